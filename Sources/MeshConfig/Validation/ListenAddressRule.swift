extension DocumentRules {
    /// Two listeners (or a listener and the admin server) that would bind the
    /// same port on overlapping addresses: the second bind would fail at
    /// start-up, so it is reported here with both paths instead.
    static func listenAddressIssues(in facts: DocumentFacts) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        var earlier: [Located<HostPort>] = []
        for address in facts.listenAddresses {
            if let clash = earlier.first(where: { $0.value.bindsOverlapping(address.value) }) {
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
}
