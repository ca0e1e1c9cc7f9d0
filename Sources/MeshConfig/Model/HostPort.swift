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
