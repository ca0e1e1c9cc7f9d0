// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SwiftMesh",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "swiftmesh", targets: ["swiftmesh"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    ],
    targets: [
        // The configuration model: YAML decoding, validation with field paths,
        // durations and addresses. Pure Swift, no I/O.
        .target(
            name: "MeshConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // A small DNS client (A/AAAA over UDP to a chosen resolver), used by
        // DNS discovery. Separate so it can be tested without the proxy.
        .target(
            name: "MeshDNS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The data plane, laid out along the request path.
        .target(
            name: "MeshProxy",
            dependencies: [
                "MeshConfig",
                "MeshDNS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // The command line, thin: parse, build, run.
        .executableTarget(
            name: "swiftmesh",
            dependencies: [
                "MeshConfig",
                "MeshProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MeshConfigTests", dependencies: ["MeshConfig"]),
        .testTarget(name: "MeshDNSTests", dependencies: ["MeshDNS"]),
        .testTarget(
            name: "MeshProxyTests",
            dependencies: [
                "MeshProxy",
                "MeshConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]
        ),
    ]
)
