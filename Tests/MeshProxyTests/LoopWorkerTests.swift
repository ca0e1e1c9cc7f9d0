import Logging
import MeshConfig
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshProxy

/// One event loop's state: what a new config keeps, replaces and retires,
/// endpoint updates by cluster name, the client connections a drain closes,
/// and the report `/clusters` sums over loops.
@Suite("Loop worker")
struct LoopWorkerTests {
    private let loop = EmbeddedEventLoop()

    private func worker() -> LoopWorker {
        LoopWorker(eventLoop: loop, logger: Logger(label: "loop-worker-test"))
    }

    private static func config(_ name: String, _ balancing: LoadBalancingPolicy = .roundRobin) -> ClusterConfig {
        ClusterConfig(name: name, discovery: .staticEndpoints([]), settings: ClusterSettings(loadBalancing: balancing))
    }

    private static func endpoints(_ ports: Int...) -> [DiscoveredEndpoint] {
        ports.map {
            DiscoveredEndpoint(address: try! SocketAddress(ipAddress: "127.0.0.1", port: $0), label: "127.0.0.1:\($0)", weight: 1)
        }
    }

    private static func shared(_ configs: [ClusterConfig]) -> [String: SharedClusterState] {
        Dictionary(uniqueKeysWithValues: configs.map {
            ($0.name, SharedClusterState(breaker: CircuitBreaker(limits: $0.settings.circuitBreaker)))
        })
    }

    private static let routing = RoutingTable(config: ProxyConfig(listeners: [], clusters: []), generation: 1)

    @Test func aNewConfigKeepsClustersOfTheSameShapeRebuildsChangedOnesAndRetiresRemovedOnes() {
        let worker = worker()
        let first = [Self.config("kept"), Self.config("changed"), Self.config("removed")]
        let shared = Self.shared(first)
        worker.apply(
            routing: Self.routing, clusters: first, shared: shared,
            endpoints: ["kept": Self.endpoints(1, 2), "changed": Self.endpoints(3), "removed": Self.endpoints(4)])
        let kept = worker.cluster(named: "kept")!
        let warm = kept.endpoints[0]
        let changed = worker.cluster(named: "changed")!
        let removed = worker.cluster(named: "removed")!
        let removedEndpoint = removed.endpoints[0]

        let second = [Self.config("kept"), Self.config("changed", .leastRequest)]
        worker.apply(
            routing: Self.routing, clusters: second,
            shared: ["kept": shared["kept"]!, "changed": SharedClusterState(breaker: CircuitBreaker(limits: second[1].settings.circuitBreaker))],
            endpoints: ["kept": Self.endpoints(1, 5), "changed": Self.endpoints(3)])

        #expect(worker.cluster(named: "kept") === kept, "same settings and breaker: the cluster and its connections stay")
        #expect(kept.endpoints.map(\.label) == ["127.0.0.1:1", "127.0.0.1:5"])
        #expect(kept.endpoints[0] === warm)
        #expect(worker.cluster(named: "changed") !== changed)
        #expect(worker.cluster(named: "changed")?.config.settings.loadBalancing == .leastRequest)
        #expect(worker.cluster(named: "removed") == nil)
        #expect(removed.endpoints.isEmpty && removedEndpoint.isRemoved, "a removed cluster drains")
        #expect(worker.clusters.map(\.config.name) == ["kept", "changed"])
    }

    @Test func endpointUpdatesAndRebalancesGoToTheNamedClusterOnly() {
        let worker = worker()
        let configs = [Self.config("a"), Self.config("b")]
        worker.apply(
            routing: Self.routing, clusters: configs, shared: Self.shared(configs),
            endpoints: ["a": Self.endpoints(1), "b": Self.endpoints(2)])
        worker.updateEndpoints(cluster: "a", Self.endpoints(1, 3))
        worker.updateEndpoints(cluster: "unknown", Self.endpoints(9))
        worker.rebalance(cluster: "unknown")
        #expect(worker.cluster(named: "a")?.endpoints.map(\.label) == ["127.0.0.1:1", "127.0.0.1:3"])
        #expect(worker.cluster(named: "b")?.endpoints.map(\.label) == ["127.0.0.1:2"])
        worker.cluster(named: "a")?.endpoints[1].inFlight = 2
        let report = worker.clusterReport()
        #expect(report["a"]?.map(\.address) == ["127.0.0.1:1", "127.0.0.1:3"])
        #expect(report["a"]?.map(\.inFlight) == [0, 2])
        #expect(report["b"]?.first?.ejected == false)
    }

    @Test func aDrainClosesEveryClientConnectionStillOpen() throws {
        let worker = worker()
        let open = (0..<3).map { _ in EmbeddedChannel(loop: loop) }
        for channel in open {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            worker.connectionOpened(channel)
        }
        // One closed on its own before the drain: no longer tracked.
        try open[0].close().wait()
        worker.connectionClosed(open[0])
        let closed = worker.closeAllConnections()
        loop.run()
        try closed.wait()
        #expect(open.allSatisfy { !$0.isActive })
    }
}
