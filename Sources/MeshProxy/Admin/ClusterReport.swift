import MeshConfig

/// A cluster in `GET /clusters`: its settings and each endpoint's live state,
/// with in-flight requests summed over event loops.
struct ClusterReport: Codable, Sendable {
    struct Endpoint: Codable, Sendable {
        var address: String
        var weight: Int
        /// `healthy` until health checking exists to say otherwise.
        var health: String
        var inFlight: Int
    }

    var name: String
    var `protocol`: String
    var loadBalancing: String
    /// `static` or `dns`.
    var discovery: String
    /// Whether the first discovery finished (static clusters always have).
    var discovered: Bool
    var endpoints: [Endpoint]

    static func merge(clusters: [ClusterConfig], perLoop: [[String: [EndpointReport]]], discovered: Set<String>) -> [ClusterReport] {
        clusters.map { cluster in
            var order: [String] = []
            var byAddress: [String: Endpoint] = [:]
            for loop in perLoop {
                for endpoint in loop[cluster.name] ?? [] {
                    if byAddress[endpoint.address] == nil {
                        order.append(endpoint.address)
                        byAddress[endpoint.address] = Endpoint(
                            address: endpoint.address, weight: endpoint.weight, health: "healthy", inFlight: 0)
                    }
                    byAddress[endpoint.address]?.inFlight += endpoint.inFlight
                }
            }
            let discoveryKind: String
            switch cluster.discovery {
            case .staticEndpoints: discoveryKind = "static"
            case .dns: discoveryKind = "dns"
            }
            return ClusterReport(
                name: cluster.name,
                protocol: cluster.protocolKind.rawValue,
                loadBalancing: cluster.loadBalancing.rawValue,
                discovery: discoveryKind,
                discovered: discovered.contains(cluster.name),
                endpoints: order.compactMap { byAddress[$0] }
            )
        }
    }
}
