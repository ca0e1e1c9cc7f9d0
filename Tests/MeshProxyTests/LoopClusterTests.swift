import MeshConfig
import MeshLoopIO
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshProxy

/// One loop's view of a cluster, without connections: which endpoints
/// balancing may pick, what a retry picks, what an endpoint update keeps.
@Suite("Loop cluster")
struct LoopClusterTests {
    private let loop = EmbeddedEventLoop()
    private let stats = LoopStats()
    private let registry = EndpointHealthRegistry(checksActively: false)

    private func cluster(panicThreshold: Int = 50, endpoints: [String]) -> LoopCluster {
        let config = ClusterConfig(
            name: "c", discovery: .staticEndpoints([]),
            settings: ClusterSettings(loadBalancing: .roundRobin, panicThreshold: panicThreshold))
        var random = FastRandom(seed: 1)
        let cluster = LoopCluster(
            config: config,
            shared: SharedClusterState(
                breaker: CircuitBreaker(limits: config.settings.circuitBreaker), healthRegistry: registry),
            eventLoop: loop, flushBatch: FlushBatch(eventLoop: loop), stats: stats, random: &random)
        cluster.updateEndpoints(endpoints.map(Self.endpoint), stats: stats, random: &random)
        return cluster
    }

    private static func endpoint(_ label: String) -> DiscoveredEndpoint {
        let port = Int(label.split(separator: ":").last ?? "0") ?? 0
        return DiscoveredEndpoint(
            address: try! SocketAddress(ipAddress: "127.0.0.1", port: port), label: label, weight: 1)
    }

    private func picks(_ cluster: LoopCluster, _ count: Int) -> Set<String> {
        var random = FastRandom(seed: 2)
        return Set((0..<count).compactMap { _ in cluster.pickEndpoint(headers: HTTPHeaders(), random: &random)?.label })
    }

    @Test func anUpdateKeepsTheEndpointsThatStayAndDrainsTheOthers() {
        let cluster = cluster(endpoints: ["127.0.0.1:1", "127.0.0.1:2"])
        let staying = cluster.endpoints[1]
        staying.inFlight = 3
        let leaving = cluster.endpoints[0]
        var random = FastRandom(seed: 3)
        cluster.updateEndpoints([Self.endpoint("127.0.0.1:2"), Self.endpoint("127.0.0.1:3")], stats: stats, random: &random)
        #expect(cluster.endpoints.map(\.label) == ["127.0.0.1:2", "127.0.0.1:3"])
        #expect(cluster.endpoints[0] === staying && staying.inFlight == 3, "its connections and counts stay")
        #expect(leaving.isRemoved && !staying.isRemoved)
        #expect(picks(cluster, 10) == ["127.0.0.1:2", "127.0.0.1:3"])
    }

    @Test func balancingLeavesOutEjectedEndpointsAndSaysWhy() {
        let cluster = cluster(endpoints: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
        registry.health(for: "127.0.0.1:1").publish(ejected: true, ejections: 1)
        var random = FastRandom(seed: 4)
        cluster.rebalance(random: &random)
        #expect(cluster.pickableCount == 2)
        #expect(picks(cluster, 20) == ["127.0.0.1:2", "127.0.0.1:3"])
        #expect(cluster.leftOutEndpoints.map(\.endpoint) == ["127.0.0.1:1"])
        #expect(cluster.leftOutEndpoints.first?.reason == "ejected by outlier detection")
    }

    @Test func belowThePanicThresholdEveryEndpointIsPickedAgain() {
        let cluster = cluster(panicThreshold: 50, endpoints: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
        registry.health(for: "127.0.0.1:1").publish(ejected: true, ejections: 1)
        registry.health(for: "127.0.0.1:2").publish(activeCheck: .failing)
        var random = FastRandom(seed: 5)
        cluster.rebalance(random: &random)
        // One usable of three is under 50 %: sending everything to it would overload it too.
        #expect(cluster.pickableCount == 3)
    }

    @Test func aRetryAvoidsTheEndpointsThatFailedWhileOthersRemain() {
        let cluster = cluster(endpoints: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
        let failed = [cluster.endpoints[0], cluster.endpoints[1]]
        var random = FastRandom(seed: 6)
        for _ in 0..<20 {
            let pick = cluster.pickRetryEndpoint(headers: HTTPHeaders(), random: &random, avoiding: failed)
            #expect(pick === cluster.endpoints[2])
        }
        // Every endpoint failed once: the balancer picks among all of them again.
        let all = cluster.pickRetryEndpoint(headers: HTTPHeaders(), random: &random, avoiding: cluster.endpoints)
        #expect(all != nil)
    }

    @Test func aRetiredClusterPicksNothing() {
        let cluster = cluster(endpoints: ["127.0.0.1:1"])
        let endpoint = cluster.endpoints[0]
        var random = FastRandom(seed: 7)
        cluster.retire(random: &random)
        #expect(endpoint.isRemoved)
        #expect(cluster.pickEndpoint(headers: HTTPHeaders(), random: &random) == nil)
        #expect(cluster.pickRetryEndpoint(headers: HTTPHeaders(), random: &random, avoiding: []) == nil)
    }

    @Test func onlySettingsAndTheSharedStateDecideWhetherAClusterIsKept() {
        let cluster = cluster(endpoints: ["127.0.0.1:1"])
        let shared = SharedClusterState(breaker: cluster.breaker, healthRegistry: registry)
        var same = cluster.config
        same.discovery = .staticEndpoints([StaticEndpoint(address: HostPort(host: "127.0.0.1", port: 9))])
        #expect(cluster.canAdopt(same, shared: shared), "endpoints alone change in place")
        var other = cluster.config
        other.settings.loadBalancing = .leastRequest
        #expect(!cluster.canAdopt(other, shared: shared))
        let newBreaker = SharedClusterState(breaker: CircuitBreaker(limits: cluster.config.settings.circuitBreaker), healthRegistry: registry)
        #expect(!cluster.canAdopt(same, shared: newBreaker), "requests counted in the old breaker must end there")
    }
}
