import NIOHTTP1

/// What a proxy must do to headers on the way through (RFC 9110 section 7.6.1):
/// connection-specific fields stay on their hop, and the request gains the
/// forwarding headers and a request id.
enum HeaderHygiene {
    static let requestIDHeader = "x-request-id"

    /// Removes connection-specific fields from request or response headers,
    /// including every field the `Connection` header names.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        // Most messages carry none of them: one pass finds out before any copy.
        guard headers.contains(where: { isConnectionSpecific($0.name) }) else { return }
        var listed: [Substring] = []
        for (name, value) in headers where name.equalsIgnoringASCIICase("connection") {
            listed += value.split(separator: ",").map { $0.trimmingOptionalWhitespace() }
        }
        var keepsTrailers = false
        var kept: [(String, String)] = []
        kept.reserveCapacity(headers.count)
        for (name, value) in headers {
            if isConnectionSpecific(name) {
                if name.equalsIgnoringASCIICase("te") {
                    keepsTrailers = keepsTrailers || value.lowercased().contains("trailers")
                }
                continue
            }
            if listed.contains(where: { name.utf8.equalsIgnoringASCIICase($0.utf8) }) {
                continue
            }
            kept.append((name, value))
        }
        if keepsTrailers {
            kept.append(("te", "trailers"))
        }
        headers = HTTPHeaders(kept)
    }

    /// Whether `name` describes one connection and is never forwarded:
    /// `Connection`, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`,
    /// `Upgrade`, and `TE`, of which only `te: trailers` is sent on (gRPC
    /// requires it end to end).
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

extension Substring {
    /// Without optional whitespace (SP, HTAB) at either end, as list elements
    /// in field values are written (RFC 9110 section 5.6.1).
    func trimmingOptionalWhitespace() -> Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}

extension String {
    /// ASCII case-insensitive equality with a lowercase name.
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        utf8.equalsIgnoringASCIICase(UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }
}

extension Sequence<UInt8> {
    /// ASCII case-insensitive equality of two byte sequences.
    func equalsIgnoringASCIICase(_ other: some Sequence<UInt8>) -> Bool {
        func lowered(_ byte: UInt8) -> UInt8 {
            byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
        }
        return elementsEqual(other) { lowered($0) == lowered($1) }
    }
}
