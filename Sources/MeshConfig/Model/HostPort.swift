/// An address as written in config files: `host:port` or `[v6]:port`.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// The host without brackets: an IPv4 or IPv6 literal, or a DNS name where allowed.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around IPv6 literals.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension HostPort {
    /// Whether binding both would clash: the same port, and the same
    /// address or a wildcard covering the other. `[::]` covers IPv4 too: an
    /// IPv6 socket is dual-stack by default on Linux (the proxy does not set
    /// IPV6_V6ONLY). Host names never clash here (they are refused as listen addresses).
    public func bindsOverlapping(_ other: HostPort) -> Bool {
        guard port == other.port,
              let ipA = IPLiteral(Substring(host)),
              let ipB = IPLiteral(Substring(other.host)) else { return false }
        func covers(_ wildcard: IPLiteral, _ other: IPLiteral) -> Bool {
            wildcard.isUnspecified && (!wildcard.isIPv4 || other.isIPv4)
        }
        return ipA == ipB || covers(ipA, ipB) || covers(ipB, ipA)
    }
}
