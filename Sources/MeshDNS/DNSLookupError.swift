import NIOCore

/// Why a lookup produced no usable answer.
///
/// A name that does not exist, or exists without addresses, is not an error:
/// `resolve` returns an empty resolution, so discovery can tell "no endpoints"
/// from "could not ask".
public enum DNSLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server (`host:port`) sent no usable answer within the timeout, after one retry.
    case timeout(server: String)
    /// The server answered with an error response code (2 SERVFAIL, 5 REFUSED, ...), from RFC 1035 §4.1.1.
    case serverFailure(rcode: Int)
    /// The response could not be decoded or did not answer the question asked.
    case malformedResponse(String)
    /// The name cannot be looked up as written (empty label, too long, not ASCII).
    case invalidName(String)
    /// The UDP socket could not be opened or the query not sent.
    case transport(String)

    public var description: String {
        switch self {
        case .timeout(let server):
            return "DNS server \(server) did not answer in time"
        case .serverFailure(let rcode):
            return "DNS server answered with error code \(rcode) (\(Self.rcodeName(rcode)))"
        case .malformedResponse(let detail):
            return "malformed DNS response: \(detail)"
        case .invalidName(let detail):
            return "invalid DNS name \(detail)"
        case .transport(let detail):
            return "DNS transport error: \(detail)"
        }
    }

    /// The mnemonic from the IANA DNS RCODE registry, so logs read without a lookup table.
    private static func rcodeName(_ rcode: Int) -> String {
        switch rcode {
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        default: return "RCODE \(rcode)"
        }
    }
}

extension SocketAddress {
    /// `host:port`, with brackets around IPv6: shorter than NIO's description, for error messages.
    var dnsServerDescription: String {
        let host = ipAddress ?? description
        let port = self.port.map(String.init) ?? "?"
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
