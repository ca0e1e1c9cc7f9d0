import NIOHTTP1

/// What a proxy must do to headers on the way through (RFC 9110 section 7.6.1):
/// connection-specific fields stay on their hop, and the request gains the
/// forwarding headers and a request id.
enum HeaderHygiene {
    static let requestIDHeader = "x-request-id"

    /// Fields that describe one connection, never forwarded. `te` is handled
    /// apart: `te: trailers` is kept because gRPC requires it end to end.
    private static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    /// Removes connection-specific fields from request or response headers,
    /// including every field the `Connection` header names.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        // Most messages carry none of them: one pass finds out before any removal.
        guard headers.contains(where: { isConnectionSpecific($0.name) }) else { return }
        for token in headers[canonicalForm: "connection"] {
            headers.remove(name: String(token))
        }
        for name in hopByHop {
            headers.remove(name: name)
        }
        if headers.contains(name: "te") {
            let keepsTrailers = headers["te"].contains { $0.lowercased().contains("trailers") }
            headers.remove(name: "te")
            if keepsTrailers {
                headers.add(name: "te", value: "trailers")
            }
        }
    }

    /// Whether `name` is one of the fields `removeHopByHop` handles by name.
    private static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: name.equalsIgnoringASCIICase("te")
        case 7: name.equalsIgnoringASCIICase("upgrade")
        case 10: name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive")
        case 16: name.equalsIgnoringASCIICase("proxy-connection")
        case 17: name.equalsIgnoringASCIICase("transfer-encoding")
        default: false
        }
    }

    /// Removes optional whitespace around field values (RFC 9110 section 5.5).
    /// HTTP/1.1 parsers may leave trailing spaces in a value; HTTP/2 peers
    /// reject such values, so they must not cross from one protocol to the other.
    /// Checks first and last bytes only, so clean headers cost no copy.
    static func trimValueWhitespace(_ headers: inout HTTPHeaders) {
        func isPadding(_ byte: UInt8?) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard headers.contains(where: { isPadding($0.value.utf8.first) || isPadding($0.value.utf8.last) }) else { return }
        var trimmed = HTTPHeaders()
        trimmed.reserveCapacity(headers.count)
        for (name, value) in headers {
            let bytes = value.utf8
            guard let start = bytes.firstIndex(where: { !isPadding($0) }),
                  let end = bytes.lastIndex(where: { !isPadding($0) }) else {
                trimmed.add(name: name, value: "")
                continue
            }
            trimmed.add(name: name, value: String(value[start...end]))
        }
        headers = trimmed
    }

    /// Appends the client's address to `x-forwarded-for` and records the
    /// scheme the client used in `x-forwarded-proto`.
    static func addForwardingHeaders(_ headers: inout HTTPHeaders, clientIP: String?, scheme: String) {
        if let clientIP {
            let existing = headers.first(name: "x-forwarded-for")
            headers.remove(name: "x-forwarded-for")
            headers.add(name: "x-forwarded-for", value: existing.map { "\($0), \(clientIP)" } ?? clientIP)
        }
        headers.replaceOrAdd(name: "x-forwarded-proto", value: scheme)
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

extension String {
    /// ASCII case-insensitive equality with a lowercase name.
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        guard utf8.count == expected.count else { return false }
        return zip(utf8, expected).allSatisfy { pair in
            let byte = pair.0
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            return lowered == pair.1
        }
    }
}
