extension DocumentRules {
    /// Two listeners (or a listener and the admin server) that would bind the
    /// same port on overlapping addresses: the second bind would fail at
    /// start-up, so it is reported here with both paths instead.
    static func listenAddressIssues(in facts: DocumentFacts) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        var earlier: [Located<HostPort>] = []
        for address in facts.listenAddresses {
            if let clash = earlier.first(where: { overlaps($0.value, address.value) }) {
                let message =
                    if clash.value == address.value {
                        "\(address.value) is already used by \(clash.path); give each listener its own address"
                    } else {
                        "\(address.value) overlaps \(clash.value) at \(clash.path), since 0.0.0.0 and [::] bind the port on every local address; use another port"
                    }
                issues.append(ConfigIssue(path: address.path.description, message: message))
            }
            earlier.append(address)
        }
        return issues
    }

    /// Same port, and the same address or a wildcard covering the other.
    /// `[::]` covers IPv4 too: an IPv6 socket is dual-stack by default on
    /// Linux (the proxy does not set IPV6_V6ONLY).
    private static func overlaps(_ a: HostPort, _ b: HostPort) -> Bool {
        guard a.port == b.port,
              let ipA = IPLiteral(Substring(a.host)),
              let ipB = IPLiteral(Substring(b.host)) else { return false }
        func covers(_ wildcard: IPLiteral, _ other: IPLiteral) -> Bool {
            wildcard.isUnspecified && (!wildcard.isIPv4 || other.isIPv4)
        }
        return ipA == ipB || covers(ipA, ipB) || covers(ipB, ipA)
    }
}
