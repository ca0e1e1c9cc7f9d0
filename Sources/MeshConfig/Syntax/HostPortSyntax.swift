/// The config spelling of addresses: `host:port`, with IPv6 literals in
/// brackets (`[::1]:8080`). The host is an IP literal or a DNS name; which of
/// the two a field allows is the field's rule, not the syntax's.
public enum HostPortSyntax {
    /// Why a text is not an address, worded for a config error message.
    enum Problem: Error, Equatable {
        case missingPort
        case invalidPort(String)
        case portOutOfRange(Int)
        case emptyHost
        case unbracketedIPv6
        case invalidHost(String)

        var explanation: String {
            switch self {
            case .missingPort:
                return "add the port after a colon, e.g. 127.0.0.1:8080"
            case let .invalidPort(text):
                return "the port \"\(text)\" is not a number 1-65535"
            case let .portOutOfRange(port):
                return "the port \(port) is outside 1-65535"
            case .emptyHost:
                return "the host is empty; write 0.0.0.0:PORT (or [::]:PORT) for every local address"
            case .unbracketedIPv6:
                return "put IPv6 addresses in brackets, e.g. [::1]:8080"
            case let .invalidHost(host):
                return "\"\(host)\" is neither an IP address nor a DNS name"
            }
        }
    }

    /// The address `text` spells, or nil when it is not `host:port` with a
    /// valid IP literal or DNS name and a port 1-65535.
    public static func parse(_ text: String) -> HostPort? {
        try? check(text).get()
    }

    /// Why `text` is not an address, worded for an error message; nil when it is one.
    public static func problem(_ text: String) -> String? {
        guard case let .failure(problem) = check(text) else { return nil }
        return problem.explanation
    }

    /// True when `host` (without brackets) is an IPv4 or IPv6 literal.
    public static func isIPLiteral(_ host: String) -> Bool {
        IPLiteral(Substring(host)) != nil
    }

    /// Like `parse`, but says what is wrong.
    static func check(_ text: String) -> Result<HostPort, Problem> {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(.invalidHost(text))
            }
            host = text[text.index(after: text.startIndex)..<close]
            let afterBracket = text[text.index(after: close)...]
            guard afterBracket.first == ":" else { return .failure(.missingPort) }
            portText = afterBracket.dropFirst()
            guard host.contains(":"), IPLiteral(host) != nil else {
                return .failure(.invalidHost(String(host)))
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.missingPort) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return .failure(.unbracketedIPv6) }
            guard !host.isEmpty else { return .failure(.emptyHost) }
            guard IPLiteral(host) != nil || DNSNameSyntax.isValid(host) else {
                return .failure(.invalidHost(String(host)))
            }
        }
        switch port(portText) {
        case let .success(port):
            return .success(HostPort(host: String(host), port: port))
        case let .failure(problem):
            return .failure(problem)
        }
    }

    private static func port(_ text: Substring) -> Result<Int, Problem> {
        // Digits only: `Int(_:)` alone would also take a sign.
        guard !text.isEmpty, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else {
            return .failure(.invalidPort(String(text)))
        }
        // A digit string too long for Int is no port either.
        guard let value = Int(text) else { return .failure(.invalidPort(String(text))) }
        guard (1...65535).contains(value) else { return .failure(.portOutOfRange(value)) }
        return .success(value)
    }
}
