#!/usr/bin/env python3
"""Writes the committed seed corpus of every fuzz target (Fuzz/Corpus/TARGET):
well-formed inputs of each kind, so that the fuzzer starts deep in the
parsers instead of finding the HTTP/2 preface byte by byte. Run it again
after changing a target's input layout; `scripts/fuzz --merge` adds what a
campaign found on top. Needs the `hpack` package (tests/e2e/requirements.txt
brings it with h2)."""
from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

from hpack import Encoder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "Fuzz" / "Corpus"


def write(target: str, seeds: list[bytes]) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("seed-*"):
        old.unlink()
    for seed in seeds:
        (directory / f"seed-{hashlib.sha1(seed).hexdigest()[:12]}").write_bytes(seed)


# ---------------------------------------------------------------- HTTP/1.1
# Layout: flags (bit 0: response, bit 1: answering HEAD), head limit / 16, cuts, message.

def http1() -> list[bytes]:
    requests = [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /a/b?c=d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
        b"\r\nGET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xe9\r\n\r\n",
    ]
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 4\r\n\r\n1\r\na\r\n0\r\n\r\n",
    ]
    return [bytes([0, 255, 0]) + r for r in requests] + [bytes([1, 255, 0]) + r for r in responses] \
        + [bytes([3, 255, 0]) + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", bytes([0, 2, 3, 5, 9, 30]) + requests[3]]


# ---------------------------------------------------------------- HTTP/2
# Layout: flags (bit 0: client, bit 1: an empty SETTINGS sent first), cuts, frames.

def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def http2() -> list[bytes]:
    enc = Encoder()
    request = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")])
    post = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/p"), (":authority", "a"),
                       ("content-length", "5"), ("te", "trailers")])
    trailers = enc.encode([("grpc-status", "0")])
    settings = frame(4, 0, 0, struct.pack("!HI", 4, 1 << 20) + struct.pack("!HI", 3, 100))
    server = [
        settings + frame(1, 5, 1, request),
        settings + frame(1, 4, 1, post) + frame(0, 0, 1, b"hel") + frame(0, 0, 1, b"lo") + frame(1, 5, 1, trailers),
        settings + frame(1, 0, 1, request[:3]) + frame(9, 4, 1, request[3:]),
        settings + frame(1, 0x25, 3, b"\x00\x00\x00\x01\x10" + request) + frame(2, 0, 3, b"\x00\x00\x00\x01\x10"),
        settings + frame(1, 4, 1, post) + frame(0, 8, 1, b"\x02hello\x00\x00") + frame(3, 0, 1, b"\x00\x00\x00\x08"),
        settings + frame(1, 5, 1, request) + frame(8, 0, 0, b"\x00\x01\x00\x00") + frame(8, 0, 1, b"\x00\x01\x00\x00"),
        settings + frame(6, 0, 0, b"12345678") + frame(4, 1, 0) + frame(7, 0, 0, b"\x00\x00\x00\x00\x00\x00\x00\x00"),
        settings + b"".join(frame(1, 5, n, request) for n in range(1, 21, 2)),
    ]
    resp = Encoder()
    response = resp.encode([(":status", "200"), ("content-type", "application/grpc")])
    client = [
        frame(4, 0, 0) + frame(1, 4, 1, response) + frame(0, 1, 1, b"ok"),
        frame(4, 0, 0) + frame(1, 4, 3, response) + frame(0, 0, 3, b"\x00\x00\x00\x00\x00") + frame(1, 5, 3, trailers),
        frame(4, 0, 0) + frame(1, 5, 5, resp.encode([(":status", "503")])) + frame(3, 0, 1, b"\x00\x00\x00\x07"),
        frame(4, 0, 0) + frame(7, 0, 0, b"\x00\x00\x00\x01\x00\x00\x00\x00bye") + frame(8, 0, 0, b"\x00\x00\xff\xff"),
    ]
    return [bytes([0, 0]) + s for s in server] + [bytes([1, 0]) + s for s in client] \
        + [bytes([2, 4, 1, 7, 20, 3]) + server[1][len(settings):], bytes([3, 0]) + client[0][9:]]


# ---------------------------------------------------------------- paths
# Layout: flags (bit 0: slashes kept, then the escaped-slash action), the target after its first `/`.

def paths() -> list[bytes]:
    targets = [b"users/7", b"%61dmin/x?q=/../%61", b"a/./b/../c//d/", b"admin;x=1/y", b"a%2Fb%5c", b"a%3ab%7E",
               b".well-known/x", b"a/.../b", b"public/..;/admin", b"x/%2e%2E/y", b"a\\b#c"]
    return [bytes([flags]) + target for target in targets for flags in (0, 2, 4, 1)]


# ---------------------------------------------------------------- DNS
# Layout: a response datagram.

def name(text: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".")) + b"\x00"


def dns() -> list[bytes]:
    def header(qid: int, flags: int, qd: int, an: int) -> bytes:
        return struct.pack("!HHHHHH", qid, flags, qd, an, 0, 0)

    question_a = name("svc.test") + struct.pack("!HH", 1, 1)
    question_aaaa = name("svc.test") + struct.pack("!HH", 28, 1)
    pointer = b"\xc0\x0c"

    def record(owner: bytes, rtype: int, data: bytes, ttl: int = 60) -> bytes:
        return owner + struct.pack("!HHIH", rtype, 1, ttl, len(data)) + data

    return [
        header(1, 0x8180, 1, 2) + question_a + record(pointer, 1, bytes([10, 0, 0, 1])) + record(pointer, 1, bytes([10, 0, 0, 2])),
        header(2, 0x8180, 1, 1) + question_aaaa + record(pointer, 28, bytes(15) + b"\x01"),
        header(3, 0x8180, 1, 2) + question_a + record(pointer, 5, name("real.test"), 30)
        + record(name("real.test"), 1, bytes([10, 0, 0, 3])),
        header(4, 0x8183, 1, 0) + question_a,
        header(5, 0x8185, 1, 0) + question_aaaa,
        header(6, 0x8382, 0, 0),
        header(7, 0x8380, 1, 2) + question_a + record(pointer, 1, bytes([10, 0, 0, 4])) + pointer + b"\x00\x01",
        header(8, 0x8180, 1, 1) + question_a + record(pointer, 16, b"\x05hello", 2**31 + 5),
    ]


# ---------------------------------------------------------------- config and resources

def yaml_blocks(*docs: str) -> list[str]:
    blocks = []
    for doc in docs:
        text = (ROOT / "docs" / doc).read_text()
        blocks += re.findall(r"```yaml\n(.*?)```", text, re.S)
    return blocks


def config() -> list[bytes]:
    files = [ROOT / "examples" / "quickstart" / "proxy.yaml", ROOT / "examples" / "front-proxy" / "proxy.yaml"]
    seeds = [f.read_bytes() for f in files]
    seeds += [b.encode() for b in yaml_blocks("configuration.md", "resilience.md", "operations.md")
              if "listeners:" in b or "clusters:" in b]
    return seeds


def resources() -> list[bytes]:
    return [b.encode() for b in yaml_blocks("mesh.md", "resilience.md", "configuration.md") if "apiVersion:" in b]


if __name__ == "__main__":
    write("FuzzHTTP1Parser", http1())
    write("FuzzHTTP2Codec", http2())
    write("FuzzPathNormalizer", paths())
    write("FuzzDNSMessage", dns())
    write("FuzzConfig", config())
    write("FuzzResources", resources())
    for target in sorted(CORPUS.iterdir()):
        print(f"{target.name}: {len(list(target.glob('seed-*')))} seeds")
