import MeshConfig

/// A cluster in `GET /clusters`: its settings and each endpoint's live state,
/// with in-flight requests summed over event loops.
struct ClusterReport: Codable, Sendable {
    struct Endpoint: Codable, Sendable {
        var address: String
        var weight: Int
        /// What active health checking says: `healthy` (also without
        /// checks), `unhealthy`, or `pending` until a new endpoint's first probe.
        var health: String
        /// Ejected by outlier detection now.
        var ejected: Bool
        /// The ejection time multiplier: ejections so far, less one per interval back in service.
        var ejections: Int
        var inFlight: Int
    }

    var name: String
    var `protocol`: String
    var loadBalancing: String
    /// `static` or `dns`.
    var discovery: String
    /// Whether the first discovery finished (static clusters always have).
    var discovered: Bool
    var circuitBreaker: CircuitBreakerState
    var endpoints: [Endpoint]

    /// The cluster's limits and how much of each is in use, over all loops.
    struct CircuitBreakerState: Codable, Sendable {
        var maxConnections: Int
        var connections: Int
        var maxPendingRequests: Int
        var pendingRequests: Int
        var maxRequests: Int
        var requests: Int
        var maxRetries: Int
        var retries: Int
    }

    private static func healthLabel(_ check: EndpointHealth.ActiveCheck) -> String {
        switch check {
        case .passing: "healthy"
        case .failing: "unhealthy"
        case .pending: "pending"
        }
    }

    static func merge(
        clusters: [ClusterConfig], perLoop: [[String: [EndpointReport]]], discovered: Set<String>,
        breakers: [String: CircuitBreaker.Snapshot]
    ) -> [ClusterReport] {
        clusters.map { cluster in
            var order: [String] = []
            var byAddress: [String: Endpoint] = [:]
            for loop in perLoop {
                for endpoint in loop[cluster.name] ?? [] {
                    if byAddress[endpoint.address] == nil {
                        order.append(endpoint.address)
                        byAddress[endpoint.address] = Endpoint(
                            address: endpoint.address, weight: endpoint.weight, health: Self.healthLabel(endpoint.activeCheck),
                            ejected: endpoint.ejected, ejections: endpoint.ejections, inFlight: 0)
                    }
                    byAddress[endpoint.address]?.inFlight += endpoint.inFlight
                }
            }
            let usage = breakers[cluster.name]
            let discoveryKind: String
            switch cluster.discovery {
            case .staticEndpoints: discoveryKind = "static"
            case .dns: discoveryKind = "dns"
            }
            return ClusterReport(
                name: cluster.name,
                protocol: cluster.protocolKind.rawValue,
                loadBalancing: cluster.settings.loadBalancing.rawValue,
                discovery: discoveryKind,
                discovered: discovered.contains(cluster.name),
                circuitBreaker: CircuitBreakerState(
                    maxConnections: cluster.settings.circuitBreaker.maxConnections, connections: usage?.connections ?? 0,
                    maxPendingRequests: cluster.settings.circuitBreaker.maxPendingRequests,
                    pendingRequests: usage?.pendingRequests ?? 0,
                    maxRequests: cluster.settings.circuitBreaker.maxRequests, requests: usage?.requests ?? 0,
                    maxRetries: cluster.settings.circuitBreaker.maxRetries, retries: usage?.retries ?? 0),
                endpoints: order.compactMap { byAddress[$0] }
            )
        }
    }
}
