import MeshConfig
import NIOCore
import NIOHTTP1

/// A cluster as one event loop sees it: its endpoints, their pools, and the
/// loop's balancer. Only its loop touches it.
final class LoopCluster {
    let config: ClusterConfig
    /// Shared with the same cluster on every other loop.
    let breaker: CircuitBreaker
    let statsLabel: Int
    private let eventLoop: EventLoop
    private let flushBatch: FlushBatch
    private let connectTimeout: TimeAmount
    private(set) var endpoints: [EndpointState] = []
    private var balancer: LoadBalancer

    init(
        config: ClusterConfig, breaker: CircuitBreaker, eventLoop: EventLoop, flushBatch: FlushBatch, stats: LoopStats,
        random: inout FastRandom
    ) {
        self.config = config
        self.breaker = breaker
        self.eventLoop = eventLoop
        self.flushBatch = flushBatch
        statsLabel = stats.label(config.name)
        connectTimeout = .nanoseconds(config.connectTimeout.nanoseconds)
        balancer = LoadBalancer(policy: config.loadBalancing, keys: [], weights: [], random: &random)
    }

    /// Whether a new config for this cluster can keep this object (and its
    /// warm connections). A new breaker cannot be adopted: the connections
    /// and requests counted in the old one must end there.
    func canAdopt(_ newConfig: ClusterConfig, breaker newBreaker: CircuitBreaker) -> Bool {
        newBreaker === breaker && newConfig.protocolKind == config.protocolKind && newConfig.connectTimeout == config.connectTimeout
            && newConfig.idleTimeout == config.idleTimeout
            && newConfig.loadBalancing == config.loadBalancing && newConfig.hashHeader == config.hashHeader
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
                next.append(EndpointState(endpoint: endpoint, pool: makePool(endpoint.address), statsLabel: stats.label(endpoint.label)))
            }
        }
        for gone in existing.values {
            gone.remove()
        }
        endpoints = next
        balancer = LoadBalancer(policy: config.loadBalancing, keys: next.map(\.label), weights: next.map(\.weight), random: &random)
    }

    /// The cluster left the config: every endpoint drains.
    func retire() {
        for endpoint in endpoints {
            endpoint.remove()
        }
        endpoints = []
    }

    /// The endpoint for one request, nil when the cluster has none.
    func pickEndpoint(headers: HTTPHeaders, random: inout FastRandom) -> EndpointState? {
        var hash: UInt64?
        if let header = config.hashHeader, let value = headers.first(name: header) {
            hash = HashRing.hash(value)
        }
        let endpoints = self.endpoints
        guard let index = balancer.pick(hash: hash, random: &random, inFlight: { endpoints[$0].inFlight }) else {
            return nil
        }
        return endpoints[index]
    }

    /// The endpoint for a retry: one the request has not failed on yet,
    /// drawn at random (the same endpoint only when no other is left). The
    /// balancer is not asked, so that retries leave its sequence alone: a
    /// round robin that also served retries would send every request's first
    /// try to the same failing endpoint.
    func pickRetryEndpoint(headers: HTTPHeaders, random: inout FastRandom, avoiding failed: [EndpointState]) -> EndpointState? {
        let untried = endpoints.filter { endpoint in !failed.contains { $0 === endpoint } }
        if !untried.isEmpty {
            return untried[random.below(untried.count)]
        }
        return pickEndpoint(headers: headers, random: &random)
    }

    private func makePool(_ address: SocketAddress) -> UpstreamPool {
        let connector = EndpointConnector(
            address: address, eventLoop: eventLoop, flushBatch: flushBatch, breaker: breaker, connectTimeout: connectTimeout,
            idleTimeout: .nanoseconds(config.idleTimeout.nanoseconds))
        switch config.protocolKind {
        case .http1: return .http1(HTTP1ConnectionPool(connector: connector))
        case .http2: return .http2(HTTP2ConnectionPool(connector: connector))
        }
    }
}
