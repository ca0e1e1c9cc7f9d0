import MeshConfig
import MeshLoopIO
import MeshUpstream
import NIOCore
import NIOHTTP1

/// A cluster as one event loop sees it: its endpoints, their pools, and the
/// loop's balancer. Only its loop touches it.
final class LoopCluster {
    let config: ClusterConfig
    /// Shared with the same cluster on every other loop.
    let breaker: CircuitBreaker
    /// Shared too; nil when the cluster has no `outlierDetection`.
    let outlierDetector: OutlierDetector?
    /// Shared too; nil when the cluster has neither `outlierDetection` nor `healthCheck`.
    let healthRegistry: EndpointHealthRegistry?
    /// Shared too; nil when the cluster has no `tls`.
    let upstreamTLS: UpstreamTLS?
    let statsLabel: Int
    /// The cluster's `destinationService` interned in the loop's stats.
    let serviceLabel: Int
    private let stats: LoopStats
    private let eventLoop: EventLoop
    private let flushBatch: FlushBatch
    private let connectTimeout: TimeAmount
    private(set) var endpoints: [EndpointState] = []
    /// The endpoints the balancer picks from: the usable ones, or all of them
    /// when fewer than `panicThreshold` percent are usable.
    private var balanced: [EndpointState] = []
    /// How many endpoints the balancer picks from now.
    var pickableCount: Int { balanced.count }
    private var balancer: LoadBalancer

    init(
        config: ClusterConfig, shared: SharedClusterState, eventLoop: EventLoop, flushBatch: FlushBatch, stats: LoopStats,
        random: inout FastRandom
    ) {
        self.config = config
        breaker = shared.breaker
        outlierDetector = shared.outlierDetector
        healthRegistry = shared.healthRegistry
        upstreamTLS = shared.upstreamTLS
        self.eventLoop = eventLoop
        self.flushBatch = flushBatch
        statsLabel = stats.label(config.name)
        serviceLabel = stats.label(config.destinationService)
        self.stats = stats
        connectTimeout = .nanoseconds(config.settings.connectTimeout.nanoseconds)
        balancer = LoadBalancer(policy: config.settings.loadBalancing, keys: [], weights: [], random: &random)
    }

    /// Whether a new config for this cluster can keep this object (and its
    /// warm connections): everything but the endpoints is the same. A new
    /// breaker cannot be adopted: the connections and requests counted in
    /// the old one must end there.
    func canAdopt(_ newConfig: ClusterConfig, shared: SharedClusterState) -> Bool {
        shared.breaker === breaker && shared.outlierDetector === outlierDetector && shared.healthRegistry === healthRegistry
            && shared.upstreamTLS === upstreamTLS
            && newConfig.settings == config.settings && newConfig.protocolKind == config.protocolKind
            && newConfig.destinationService == config.destinationService
    }

    /// Replaces the endpoint set. Endpoints that stay keep their connections
    /// and in-flight counts; endpoints that left finish their requests and get no new ones.
    func updateEndpoints(_ discovered: [DiscoveredEndpoint], stats: LoopStats, random: inout FastRandom) {
        var existing: [String: EndpointState] = [:]
        for endpoint in endpoints {
            existing[endpoint.label] = endpoint
        }
        var next: [EndpointState] = []
        next.reserveCapacity(discovered.count)
        for endpoint in discovered {
            if let kept = existing.removeValue(forKey: endpoint.label) {
                kept.weight = endpoint.weight
                next.append(kept)
            } else {
                next.append(EndpointState(
                    endpoint: endpoint, pool: makePool(endpoint.address), statsLabel: stats.label(endpoint.label),
                    health: healthRegistry?.health(for: endpoint.label)))
            }
        }
        for gone in existing.values {
            gone.remove()
        }
        endpoints = next
        rebalance(random: &random)
    }

    /// Rebuilds the balancer over the endpoints that may be picked now; run
    /// when the endpoint set or any endpoint's ejection changes.
    func rebalance(random: inout FastRandom) {
        let usable = endpoints.filter(\.isUsable)
        // Envoy's panic mode: with too few usable endpoints left, sending
        // everything to them would overload them too; spread over all again.
        let panicking = usable.count * 100 < endpoints.count * config.settings.panicThreshold
        balanced = panicking ? endpoints : usable
        balancer = LoadBalancer(
            policy: config.settings.loadBalancing, keys: balanced.map(\.label), weights: balanced.map(\.weight), random: &random)
    }

    /// The cluster left the config: every endpoint drains.
    func retire(random: inout FastRandom) {
        for endpoint in endpoints {
            endpoint.remove()
        }
        endpoints = []
        balanced = []
        // Requests still holding the cluster (a retry in its backoff) find no endpoint.
        balancer = LoadBalancer(policy: config.settings.loadBalancing, keys: [], weights: [], random: &random)
    }

    /// The endpoints balancing leaves out and why, for `explain`.
    var leftOutEndpoints: [RequestRecord.LeftOutEndpoint] {
        endpoints.compactMap { endpoint in
            endpoint.unusableReason.map { RequestRecord.LeftOutEndpoint(endpoint: endpoint.label, reason: $0) }
        }
    }

    /// The endpoint for one request, nil when the cluster has none.
    func pickEndpoint(headers: HTTPHeaders, random: inout FastRandom) -> EndpointState? {
        var hash: UInt64?
        if let header = config.settings.hashHeader, let value = headers.first(name: header) {
            hash = HashRing.hash(value)
        }
        let balanced = self.balanced
        guard let index = balancer.pick(hash: hash, random: &random, inFlight: { balanced[$0].inFlight }) else {
            return nil
        }
        return balanced[index]
    }

    /// The endpoint for a retry: one the request has not failed on yet,
    /// drawn at random (the same endpoint only when no other is left). The
    /// balancer is not asked, so that retries leave its sequence alone: a
    /// round robin that also served retries would send every request's first
    /// try to the same failing endpoint.
    func pickRetryEndpoint(headers: HTTPHeaders, random: inout FastRandom, avoiding failed: [EndpointState]) -> EndpointState? {
        let untried = balanced.filter { endpoint in !failed.contains { $0 === endpoint } }
        if !untried.isEmpty {
            return untried[random.below(untried.count)]
        }
        return pickEndpoint(headers: headers, random: &random)
    }

    /// Tells the outlier detector how a try on `endpoint` went.
    func report(_ endpoint: EndpointState, failed: Bool) {
        guard let outlierDetector, let health = endpoint.health else { return }
        if failed {
            outlierDetector.recordFailure(health)
        } else {
            outlierDetector.recordSuccess(health)
        }
    }

    private func makePool(_ address: SocketAddress) -> UpstreamPool {
        let connector = EndpointConnector(
            address: address, eventLoop: eventLoop, connectTimeout: connectTimeout, tls: upstreamTLS,
            tally: UpstreamConnectTally(stats: stats, cluster: statsLabel))
        let dialer = EndpointDialer(
            eventLoop: eventLoop, flushBatch: flushBatch, breaker: breaker,
            idleTimeout: .nanoseconds(config.settings.idleTimeout.nanoseconds), connect: connector.connect)
        switch config.protocolKind {
        case .http1: return .http1(HTTP1ConnectionPool(dialer: dialer))
        case .http2: return .http2(HTTP2ConnectionPool(dialer: dialer))
        }
    }
}
