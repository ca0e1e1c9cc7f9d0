import MeshConfig
import NIOCore

/// Turns configured or resolved addresses into `DiscoveredEndpoint`s.
enum EndpointResolution {
    static func endpoints(_ statics: [StaticEndpoint]) -> [DiscoveredEndpoint] {
        statics.compactMap { endpoint in
            // Validation guarantees IP literals; a failure here would be a validator bug.
            guard let address = try? SocketAddress(ipAddress: endpoint.address.host, port: endpoint.address.port) else {
                return nil
            }
            return DiscoveredEndpoint(address: address, label: endpoint.address.description, weight: endpoint.weight)
        }
    }

    static func endpoints(ips: [String], port: Int) -> [DiscoveredEndpoint] {
        ips.compactMap { ip in
            guard let address = try? SocketAddress(ipAddress: ip, port: port) else { return nil }
            return DiscoveredEndpoint(address: address, label: HostPort(host: ip, port: port).description, weight: 1)
        }
    }
}
