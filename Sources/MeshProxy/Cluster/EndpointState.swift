import MeshUpstream
import NIOCore

/// An endpoint as discovery reports it. Sendable, so it can travel from the
/// discovery task to every event loop.
struct DiscoveredEndpoint: Sendable, Equatable {
    var address: SocketAddress
    /// `ip:port` (`[v6]:port`): the endpoint's identity in metrics, admin and the hash ring.
    var label: String
    var weight: Int
}

/// One endpoint of a cluster as one event loop sees it: its connections and
/// the requests this loop has in flight to it.
final class EndpointState {
    let label: String
    /// `label` interned in the loop's stats.
    let statsLabel: Int
    var weight: Int
    var inFlight = 0
    /// Gone from discovery: gets no new requests; its connections close as their requests finish.
    private(set) var isRemoved = false
    let pool: UpstreamPool
    /// Shared with the same endpoint on every loop; nil when the cluster has
    /// neither outlier detection nor health checks.
    let health: EndpointHealth?

    init(endpoint: DiscoveredEndpoint, pool: UpstreamPool, statsLabel: Int, health: EndpointHealth?) {
        label = endpoint.label
        weight = endpoint.weight
        self.pool = pool
        self.statsLabel = statsLabel
        self.health = health
    }

    /// Whether balancing may pick it: healthy and not ejected.
    var isUsable: Bool { health?.isUsable ?? true }

    /// Why balancing may not pick it, for `explain`; nil when it may.
    var unusableReason: String? {
        guard let health, !health.isUsable else { return nil }
        return health.isEjected ? "ejected by outlier detection" : "failing its active health checks"
    }

    func remove() {
        isRemoved = true
        pool.drain()
    }
}

/// The connection pool of an endpoint, by the cluster's protocol.
enum UpstreamPool {
    case http1(HTTP1ConnectionPool)
    case http2(HTTP2ConnectionPool)

    func acquire(for request: any UpstreamRequest) {
        switch self {
        case .http1(let pool): pool.acquire(for: request)
        case .http2(let pool): pool.acquire(for: request)
        }
    }

    /// `request` ended while waiting for a connection or stream.
    func stopWaiting(_ request: any UpstreamRequest) {
        switch self {
        case .http1(let pool): pool.stopWaiting(request)
        case .http2(let pool): pool.stopWaiting(request)
        }
    }

    func drain() {
        switch self {
        case .http1(let pool): pool.drain()
        case .http2(let pool): pool.drain()
        }
    }
}
