// swift-tools-version: 6.2
// bench/otel-compare: swift-otel's tracer and batch span processor against
// SwiftMesh's SpanRecorder and OTLPExporter, making the same spans. Its own
// package, so that the proxy's build never pays for swift-otel (about 7
// minutes on 2 cores); OurTracing links the proxy's tracing sources.
// Run: python3 bench/otel-compare/run.py
import PackageDescription

let package = Package(
    name: "otelbench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/swift-otel/swift-otel.git", exact: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(name: "MeshConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "OurTracing", dependencies: [
            "MeshConfig",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "otelbench", dependencies: [
            "OurTracing",
            .product(name: "OTel", package: "swift-otel"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)
