/// Rules for header names written in routes.
enum HeaderNameSyntax {
    /// RFC 9110 `token`: the characters a field name may contain.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9",
                 "!", "#", "$", "%", "&", "'", "*", "+", "-", ".", "^", "_", "`", "|", "~":
                return true
            default:
                return false
            }
        }
    }

    /// Headers a route may not add or remove because the proxy itself manages
    /// them per connection or per hop: changing them would corrupt message
    /// framing or connection handling. Pseudo-headers (`:authority` and the
    /// like) are excluded separately, by their leading colon.
    static let managedByProxy: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
        "upgrade", "host", "content-length",
    ]

    /// Header values go on the wire as they are; CR, LF or NUL in one would let
    /// a config split or truncate the request head.
    static func isValidValue(_ value: String) -> Bool {
        !value.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" }
    }
}
