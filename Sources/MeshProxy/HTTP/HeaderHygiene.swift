import MeshHTTP1
import NIOHTTP1

/// What a proxy must do to headers on the way through (RFC 9110 section 7.6.1):
/// connection-specific fields stay on their hop, and the request gains the
/// forwarding headers and a request id.
enum HeaderHygiene {
    static let requestIDHeader = "x-request-id"
    /// The identity of the client's certificate, set by the proxy alone.
    static let clientIdentityHeader = "swiftmesh-client-identity"

    /// The fields a request carries to its endpoint, built in one pass over
    /// the client's (each edit on its own would scan the list again):
    /// connection-specific fields dropped, padded values trimmed, the route's
    /// header edits applied, the request id set, the client's address
    /// appended to `x-forwarded-for`, `x-forwarded-proto` set (https for a
    /// TLS client connection), `swiftmesh-client-identity` set to the client
    /// certificate's identity (a client's own is always removed), and a
    /// `Host` added when the client sent none (HTTP/2 endpoints need an
    /// `:authority`), and `cookie` fields an HTTP/2 client split joined
    /// into one (RFC 9113 section 8.2.3: an HTTP/1.1 endpoint needs one).
    /// `Expect: 100-continue` is taken out when the proxy answers it itself
    /// (`answersExpect`), which the result reports.
    static func upstreamRequestFields(
        _ headers: HTTPHeaders, route: CompiledRoute, requestID: String, clientIP: String?,
        isTLS: Bool = false, clientIdentity: String? = nil, defaultHost: String, answersExpect: Bool
    ) -> (fields: HTTPHeaders, expectsContinue: Bool) {
        var kept: [(String, String)] = []
        kept.reserveCapacity(headers.count + route.headersToAdd.count + 4)
        var hopByHop = HopByHop()
        var forwardedFor: String?
        var hasHost = false
        var expectsContinue = false

        var hasContentLength = false
        /// Where the first `cookie` field went; the others are appended to it in place.
        var cookieIndex: Int?

        /// Keeps a field unless it is one the proxy sets itself.
        func take(_ name: String, _ value: String) {
            switch name.utf8.count {
            case 4 where name.equalsIgnoringASCIICase("host"):
                hasHost = true
            case 6 where name.equalsIgnoringASCIICase("cookie"):
                if let index = cookieIndex {
                    kept[index].1.append("; ")
                    kept[index].1.append(value)
                    return
                }
                cookieIndex = kept.count
            case 14 where name.equalsIgnoringASCIICase("content-length"):
                // Repeats were checked equal when parsed: one goes on.
                guard !hasContentLength else { return }
                hasContentLength = true
            case 12 where name.equalsIgnoringASCIICase("x-request-id"):
                return
            case 15 where clientIP != nil && name.equalsIgnoringASCIICase("x-forwarded-for"):
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                return
            case 17 where name.equalsIgnoringASCIICase("x-forwarded-proto"):
                return
            case 25 where name.equalsIgnoringASCIICase("swiftmesh-client-identity"):
                return
            default:
                break
            }
            kept.append((name, value))
        }

        for (name, value) in headers {
            let value = trimmingPadding(value)
            if hopByHop.isConnectionSpecific(name, value) {
                continue
            }
            // The client's expectation, whatever the route does to the field.
            if answersExpect && name.utf8.count == 6 && name.equalsIgnoringASCIICase("expect")
                && value.utf8.equalsIgnoringASCIICase("100-continue".utf8) {
                expectsContinue = true
                continue
            }
            if !route.editsHeader(named: name) {
                take(name, value)
            }
        }
        // Fields `Connection` named are dropped, those set aside included.
        hopByHop.removeListed(from: &kept)
        if hopByHop.lists("host") {
            hasHost = false
        }
        if hopByHop.lists("x-forwarded-for") {
            forwardedFor = nil
        }
        for header in route.headersToAdd {
            take(header.name, header.value)
        }
        kept.append((requestIDHeader, requestID))
        if let clientIP {
            kept.append(("x-forwarded-for", forwardedFor.map { "\($0), \(clientIP)" } ?? clientIP))
        }
        kept.append(("x-forwarded-proto", isTLS ? "https" : "http"))
        if let clientIdentity {
            kept.append((clientIdentityHeader, clientIdentity))
        }
        if !hasHost {
            kept.append(("host", defaultHost))
        }
        return (HTTPHeaders(kept), expectsContinue)
    }

    /// Trailers as they travel on, either way: without the fields a
    /// trailer section may not carry (RFC 9110 section 6.5.1: framing,
    /// routing, connection-specific and content-processing fields such as
    /// `Content-Length`, `Host`, `Transfer-Encoding`, `Connection`), which
    /// a peer could otherwise take for the head's; a client's also without
    /// a field only the proxy sets. Trailers with none of them (gRPC's
    /// always) are returned as they are.
    static func forwardedTrailers(_ trailers: HTTPHeaders, fromClient: Bool) -> HTTPHeaders {
        func isRefused(_ name: String) -> Bool {
            switch name.utf8.count {
            case 2: name.equalsIgnoringASCIICase("te")
            case 4: name.equalsIgnoringASCIICase("host")
            case 7: name.equalsIgnoringASCIICase("upgrade") || name.equalsIgnoringASCIICase("trailer")
            case 10: name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive")
            case 12: name.equalsIgnoringASCIICase("content-type")
            case 13: name.equalsIgnoringASCIICase("content-range")
            case 14: name.equalsIgnoringASCIICase("content-length")
            case 16: name.equalsIgnoringASCIICase("proxy-connection") || name.equalsIgnoringASCIICase("content-encoding")
            case 17: name.equalsIgnoringASCIICase("transfer-encoding")
            case 25: fromClient && name.equalsIgnoringASCIICase("swiftmesh-client-identity")
            default: false
            }
        }
        guard trailers.contains(where: { isRefused($0.name) }) else { return trailers }
        return HTTPHeaders(trailers.filter { !isRefused($0.name) }.map { ($0.name, $0.value) })
    }

    /// The fields a response carries to the client, in one pass:
    /// connection-specific fields dropped, padded values trimmed, and the
    /// request id set.
    static func downstreamResponseFields(_ headers: HTTPHeaders, requestID: String) -> HTTPHeaders {
        var kept: [(String, String)] = []
        kept.reserveCapacity(headers.count + 1)
        var hopByHop = HopByHop()
        for (name, value) in headers {
            let value = trimmingPadding(value)
            if hopByHop.isConnectionSpecific(name, value)
                || (name.utf8.count == 12 && name.equalsIgnoringASCIICase("x-request-id")) {
                continue
            }
            kept.append((name, value))
        }
        hopByHop.removeListed(from: &kept)
        kept.append((requestIDHeader, requestID))
        return HTTPHeaders(kept)
    }

    /// Connection-specific fields (RFC 9110 section 7.6.1) met during a pass
    /// over a message's fields, and what they said.
    private struct HopByHop {
        /// Field names the `Connection` header listed, beyond the ones that
        /// are connection-specific anyway.
        private var listed: [Substring] = []
        /// `te: trailers` is the one connection-specific field sent on (gRPC
        /// requires it end to end).
        private var keepsTrailers = false

        /// Whether the field describes one connection and is never forwarded:
        /// `Connection`, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`,
        /// `Upgrade` and `TE`.
        mutating func isConnectionSpecific(_ name: String, _ value: String) -> Bool {
            switch name.utf8.count {
            case 2:
                guard name.equalsIgnoringASCIICase("te") else { return false }
                keepsTrailers = keepsTrailers || Self.namesTrailers(value)
            case 7:
                return name.equalsIgnoringASCIICase("upgrade")
            case 10:
                if name.equalsIgnoringASCIICase("connection") {
                    for option in value.split(separator: ",") {
                        let option = option.trimmingOptionalWhitespace()
                        if !Self.isStandardOption(option) {
                            listed.append(option)
                        }
                    }
                    return true
                }
                return name.equalsIgnoringASCIICase("keep-alive")
            case 16:
                return name.equalsIgnoringASCIICase("proxy-connection")
            case 17:
                return name.equalsIgnoringASCIICase("transfer-encoding")
            default:
                return false
            }
            return true
        }

        /// Whether a `TE` value lists `trailers`: its `t-codings`, each maybe
        /// with parameters after `;`, compared as ASCII. A byte scan: nearly
        /// every gRPC request carries the field.
        static func namesTrailers(_ value: String) -> Bool {
            var start = value.utf8.startIndex
            let end = value.utf8.endIndex
            while start < end {
                let next = value.utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? end
                var coding = value.utf8[start..<next]
                if let parameters = coding.firstIndex(of: UInt8(ascii: ";")) {
                    coding = coding[coding.startIndex..<parameters]
                }
                let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
                while let first = coding.first, isSpace(first) { coding = coding.dropFirst() }
                while let last = coding.last, isSpace(last) { coding = coding.dropLast() }
                if coding.equalsIgnoringASCIICase("trailers".utf8) {
                    return true
                }
                start = next == end ? end : value.utf8.index(after: next)
            }
            return false
        }

        /// `Connection` options that name no other field, or one dropped anyway.
        private static func isStandardOption(_ option: Substring) -> Bool {
            ["close", "keep-alive", "upgrade", "te"].contains { option.utf8.equalsIgnoringASCIICase($0.utf8) }
        }

        /// Whether `Connection` named the field `name` (lowercase).
        func lists(_ name: String) -> Bool {
            listed.contains { $0.utf8.equalsIgnoringASCIICase(name.utf8) }
        }

        /// Takes out the fields `Connection` named and puts back `te: trailers`.
        func removeListed(from kept: inout [(String, String)]) {
            if !listed.isEmpty {
                kept.removeAll { field in listed.contains { field.0.utf8.equalsIgnoringASCIICase($0.utf8) } }
            }
            if keepsTrailers {
                kept.append(("te", "trailers"))
            }
        }
    }

    /// `value` without optional whitespace (SP, HTAB) at either end (RFC 9110
    /// section 5.5): HTTP/1.1 parsers may leave trailing spaces in a value,
    /// and HTTP/2 peers reject such values, so they must not cross from one
    /// protocol to the other. Clean values (nearly all) cost no copy.
    private static func trimmingPadding(_ value: String) -> String {
        func isPadding(_ byte: UInt8?) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard isPadding(value.utf8.first) || isPadding(value.utf8.last) else { return value }
        return String(Substring(value).trimmingOptionalWhitespace())
    }

    /// Whether the request head is within the listener's limits, counting the
    /// bytes of names and values as HTTP/2's header list size does (without
    /// its 32-byte per-field overhead, which would surprise HTTP/1.1 users).
    static func checkLimits(_ headers: HTTPHeaders, maxBytes: Int, maxCount: Int) -> ProxyError? {
        if headers.count > maxCount {
            return .tooManyHeaders
        }
        var bytes = 0
        for (name, value) in headers {
            bytes += name.utf8.count + value.utf8.count
        }
        return bytes > maxBytes ? .headersTooLarge : nil
    }
}
