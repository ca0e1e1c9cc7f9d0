import NIOHTTP1

/// An HTTP/1 request's authority, checked before the request is routed,
/// so that the proxy and the app cannot disagree on which host was asked
/// (RFC 9112 sections 3.2 and 3.2.2, as HAProxy checks it):
/// - two `Host` fields, or one that is no `host[:port]` (`a, b`): refused;
/// - an HTTP/1.1 request without `Host`: refused;
/// - an absolute-form target (`GET http://a.example/x`): its authority must
///   be `Host`'s when both are sent; the request goes on in origin form
///   (`/x`) with `Host` set from the target.
///
/// HTTP/2 requests get the same checks from `HTTP2HeaderMapping` (a `host`
/// field differing from `:authority` makes the request malformed).
package enum RequestAuthority {
    /// Checks `head` and rewrites an absolute-form target; the reason for a 400, or nil.
    package static func check(_ head: inout HTTPRequestHead) -> String? {
        guard head.version.major == 1 else { return nil }
        var host: String?
        var hostFields = 0
        for (name, value) in head.headers where name.utf8.count == 4 && name.equalsIgnoringASCIICase("host") {
            hostFields += 1
            host = value
        }
        if hostFields > 1 {
            return "more than one Host field"
        }
        // Empty is allowed: a target without an authority is sent so (RFC 9112 section 3.2).
        if let host, !host.isEmpty, !isValidHost(host) {
            return "an invalid Host (\(host.prefix(64)))"
        }
        let target = head.uri.utf8
        if let first = target.first, first != UInt8(ascii: "/"), head.uri != "*", head.method != .CONNECT {
            guard let (authority, originForm) = absoluteForm(head.uri), isValidHost(authority) else {
                return "a request target that is neither a path nor an http(s) URI"
            }
            if let host, !host.utf8.equalsIgnoringASCIICase(authority.utf8) {
                return "the request target's authority (\(authority.prefix(64))) differs from Host (\(host.prefix(64)))"
            }
            head.uri = originForm
            head.headers.replaceOrAdd(name: "host", value: String(authority))
            return nil
        }
        if host == nil && head.version.minor >= 1 {
            return "an HTTP/1.1 request without Host"
        }
        return nil
    }

    /// `http://authority/path?query` (or `https`): the authority, and the
    /// target in origin form (`/` when the path is empty). Nil for any other
    /// scheme, an empty authority, or one with user information.
    package static func absoluteForm(_ target: String) -> (authority: Substring, originForm: String)? {
        let bytes = target.utf8
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let scheme = bytes[bytes.startIndex..<colon]
        guard scheme.equalsIgnoringASCIICase("http".utf8) || scheme.equalsIgnoringASCIICase("https".utf8),
              bytes[colon...].starts(with: "://".utf8) else { return nil }
        let authorityStart = bytes.index(colon, offsetBy: 3)
        let authorityEnd = bytes[authorityStart...].firstIndex {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
        } ?? bytes.endIndex
        let authority = target[authorityStart..<authorityEnd]
        guard !authority.isEmpty, !authority.utf8.contains(UInt8(ascii: "@")) else { return nil }
        let rest = target[authorityEnd...]
        let originForm = rest.utf8.first == UInt8(ascii: "/") ? String(rest) : "/" + rest
        return (authority, originForm)
    }

    /// `uri-host [ ":" port ]` (RFC 9110 section 7.2): an IP literal in
    /// brackets, or a name of unreserved characters, escapes and the
    /// sub-delimiters other than `,` and `;` (which would make a list of
    /// hosts of one field), with at most five digits of port.
    package static func isValidHost(_ value: String) -> Bool {
        value.utf8.withContiguousStorageIfAvailable { isValidHost(bytes: $0) } ?? isValidHost(bytes: Array(value.utf8))
    }

    package static func isValidHost(_ value: Substring) -> Bool {
        value.utf8.withContiguousStorageIfAvailable { isValidHost(bytes: $0) } ?? isValidHost(bytes: Array(value.utf8))
    }

    private static func isValidHost(bytes value: some Collection<UInt8>) -> Bool {
        var bytes = value[...]
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
            // Hex digits, colons and dots, and a zone (`%25eth0`, RFC 6874).
            guard !literal.isEmpty, literal.allSatisfy({ isNameByte($0) || $0 == UInt8(ascii: ":") }) else {
                return false
            }
            bytes = bytes[bytes.index(after: close)...]
        } else {
            let nameEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
            let name = bytes[bytes.startIndex..<nameEnd]
            guard !name.isEmpty, name.allSatisfy(isNameByte) else { return false }
            bytes = bytes[nameEnd...]
        }
        guard let colon = bytes.first else { return true }
        let port = bytes.dropFirst()
        return colon == UInt8(ascii: ":") && port.count <= 5 && port.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
             UInt8(ascii: "="):
            true
        default:
            false
        }
    }
}
