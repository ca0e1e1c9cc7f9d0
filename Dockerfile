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
RUN scripts/build && install -D .build/release/swiftmesh /out/swiftmesh

FROM debian:bookworm-slim
# What the binary links dynamically (SQLite for the control plane's store,
# the C++ runtime, zlib) and the CA bundle for TLS to outside services.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libsqlite3-0 libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --home-dir /var/lib/swiftmesh --create-home swiftmesh
COPY --from=build /out/swiftmesh /usr/local/bin/swiftmesh
USER 65532:65532
WORKDIR /var/lib/swiftmesh
ENTRYPOINT ["/usr/local/bin/swiftmesh"]
CMD ["--help"]
