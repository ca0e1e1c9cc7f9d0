"""Helpers for the whole-binary tests: peers (HTTP/1.1, gRPC, nginx h2c, DNS),
the proxy process, raw HTTP/1.1 and small utilities. Nothing here imports the
project's Swift code: the binary is tested from the outside only."""
