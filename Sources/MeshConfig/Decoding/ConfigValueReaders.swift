/// Readers for the value syntaxes that config fields share: names,
/// durations, ports, addresses and header names.
extension NodeReader {
    /// Listener and cluster names end up as metric labels and log fields, so
    /// they are kept to characters that need no quoting there.
    mutating func name(_ node: ConfigNode) -> String? {
        let expectation = "a name of letters, digits, \".\", \"_\" and \"-\""
        guard let text = string(node, expected: expectation) else { return nil }
        guard !text.isEmpty,
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else {
            reportExpected(expectation, got: node)
            return nil
        }
        return text
    }

    /// Any duration in `DurationSyntax`, zero included.
    mutating func duration(_ node: ConfigNode) -> MeshDuration? {
        if case let .scalar(scalar) = node.node, !Self.isNull(node.node),
           let duration = DurationSyntax.parse(scalar.string) {
            return duration
        }
        var message = "expected a duration such as 250ms, 2s or 1m30s, got \(Self.describe(node.node))"
        // A bare number is the likeliest mistake; say what is missing.
        if Self.decimalInteger(node.node) != nil {
            message += " (add a unit: h, m, s, ms, us or ns)"
        }
        report(node.path, message)
        return nil
    }

    /// A duration above zero, for timeouts: a zero timeout would fail every
    /// request, which is never what the author meant.
    mutating func positiveDuration(_ node: ConfigNode) -> MeshDuration? {
        guard let value = duration(node) else { return nil }
        guard value.nanoseconds > 0 else {
            report(node.path, "expected a duration above zero such as 2s, got \(value)")
            return nil
        }
        return value
    }

    mutating func duration(_ node: ConfigNode, atLeast minimum: MeshDuration) -> MeshDuration? {
        guard let value = duration(node) else { return nil }
        guard value >= minimum else {
            report(node.path, "expected a duration of at least \(minimum), got \(value)")
            return nil
        }
        return value
    }

    mutating func port(_ node: ConfigNode) -> Int? {
        guard let port = Self.decimalInteger(node.node), (1...65535).contains(port) else {
            reportExpected("a port 1-65535", got: node)
            return nil
        }
        return port
    }

    /// An IP literal and a port. `onHostName` words the fix for the common
    /// mistake of writing a host name where the proxy needs an address: what
    /// to do instead differs by field (listen on an IP, or use `dns:`).
    mutating func ipAddress(_ node: ConfigNode, onHostName: (HostPort) -> String) -> HostPort? {
        let expectation = "an IP address and port such as 127.0.0.1:8080 or [::1]:8080"
        guard case let .scalar(scalar) = node.node, !Self.isNull(node.node) else {
            reportExpected(expectation, got: node)
            return nil
        }
        switch HostPortSyntax.check(scalar.string) {
        case let .failure(problem):
            report(node.path, "expected \(expectation), got \(Self.describe(node.node)): \(problem.explanation)")
            return nil
        case let .success(address) where !HostPortSyntax.isIPLiteral(address.host):
            report(node.path, "expected \(expectation), got \(Self.describe(node.node)): \(onHostName(address))")
            return nil
        case let .success(address):
            return address
        }
    }

    /// A header name, lower-cased: HTTP/2 requires lower-case names on the
    /// wire and HTTP/1.1 compares them case-insensitively, so one spelling
    /// serves both.
    mutating func headerName(_ node: ConfigNode) -> String? {
        guard let text = string(node, expected: "a header name") else { return nil }
        return headerName(text, at: node.path)
    }

    /// Checks a header name given as a mapping key (`requestHeadersToAdd`),
    /// where the path already ends in the name.
    mutating func headerName(_ text: String, at path: FieldPath) -> String? {
        if text.hasPrefix(":") {
            report(path, "\(Self.quoted(text)) is a pseudo-header, which the proxy derives from the request itself; name a regular header instead")
            return nil
        }
        guard HeaderNameSyntax.isToken(text) else {
            report(path, "expected a header name of letters, digits and !#$%&'*+-.^_`|~, got \(Self.quoted(text))")
            return nil
        }
        return text.lowercased()
    }
}
