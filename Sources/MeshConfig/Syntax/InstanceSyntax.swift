/// The fields of an instance wherever one is written (a sidecar's Hello, a
/// snapshot, `swiftmesh register`): what is wrong with each value and what
/// would fix it; nil for a valid one.
public enum InstanceSyntax {
    /// An instance is reached at an IP address, and not at a wildcard such
    /// as 0.0.0.0, which only means "every local address" to the one who binds it.
    public static func addressProblem(_ host: String) -> String? {
        guard let ip = IPLiteral(Substring(host)) else {
            return "\"\(host)\" is not an IP address; an instance is reached at its IP address, such as 10.0.0.7"
        }
        return ip.isUnspecified
            ? "\"\(host)\" is not an address other sidecars can reach; use this instance's IP address, such as 10.0.0.7"
            : nil
    }

    public static func portProblem(_ port: Int) -> String? {
        (1...65535).contains(port) ? nil : "\(port) is not a port; use 1 to 65535"
    }

    public static func protocolProblem(_ text: String) -> String? {
        UpstreamProtocol(rawValue: text) != nil ? nil : "\"\(text)\" is not one of http1, http2"
    }
}
