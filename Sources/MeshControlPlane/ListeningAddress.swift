import GRPCNIOTransportHTTP2Posix
import MeshConfig
import NIOCore

/// A bound address as the startup log says it: `127.0.0.1:15080`,
/// `[::1]:15080`, the way every flag takes it, whichever library bound it.
enum ListeningAddress {
    static func text(_ address: NIOCore.SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return address.map { "\($0)" } ?? "?" }
        return HostPort(host: ip, port: port).description
    }

    static func text(_ address: GRPCNIOTransportCore.SocketAddress) -> String {
        if let ipv4 = address.ipv4 {
            return HostPort(host: ipv4.host, port: ipv4.port).description
        }
        if let ipv6 = address.ipv6 {
            return HostPort(host: ipv6.host, port: ipv6.port).description
        }
        return "\(address)"
    }
}
