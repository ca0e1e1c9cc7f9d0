# One image for every role: `swiftmesh proxy`, `sidecar`, `control-plane`,
# and the demo's `example` services (the entrypoint is the binary; the
# role is the first argument). Built in two stages: the Swift toolchain
# compiles a release binary with the Swift runtime linked in statically
# (scripts/build), and a slim Debian image runs it.
#
#   docker build -t swiftmesh .
#   docker run --rm swiftmesh --help
#   docker run --rm -p 8080:8080 -v $PWD/proxy.yaml:/etc/swiftmesh/proxy.yaml \
#     swiftmesh proxy --config /etc/swiftmesh/proxy.yaml

# The toolchain the project is built and tested with (Swift 6.3).
FROM swift:6.3-bookworm AS build
WORKDIR /src
# The whole tree at once: the manifest names target folders (examples/...)
# that must exist for SwiftPM to resolve the package.
COPY . .
# Debug information out (about 90 MB every pod would pull), function names
# kept for crash backtraces.
RUN scripts/build && install -D .build/release/swiftmesh /out/swiftmesh && strip --strip-debug /out/swiftmesh

FROM debian:bookworm-slim
# What the binary links dynamically (SQLite for the control plane's store,
# the C++ runtime, zlib) and the CA bundle for TLS to outside services.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libsqlite3-0 libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 swiftmesh \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /var/lib/swiftmesh swiftmesh \
 && install -d -o 65532 -g 65532 /var/lib/swiftmesh
COPY --from=build /out/swiftmesh /usr/local/bin/swiftmesh
# A crash prints its stack: the statically linked runtime's backtracer
# comes from the toolchain.
COPY --from=build /usr/libexec/swift/linux/swift-backtrace-static /usr/local/libexec/swift-backtrace-static
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,swift-backtrace=/usr/local/libexec/swift-backtrace-static
USER 65532:65532
WORKDIR /var/lib/swiftmesh
ENTRYPOINT ["/usr/local/bin/swiftmesh"]
CMD ["--help"]
