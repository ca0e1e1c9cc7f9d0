import NIOHPACK
import NIOHTTP1

/// Translates between HTTP/2 header blocks and the HTTP/1-shaped heads the
/// exchange works with (RFC 9113 section 8.3: pseudo-header fields first,
/// `:authority` for `Host`, lowercase names, no connection-specific fields;
/// the exchange already removed those).
///
/// Inbound blocks are validated here, in the same pass that converts them
/// (RFC 9113 section 8.2): lowercase token names, pseudo-header fields first
/// and only the defined ones, no connection-specific fields, values without
/// NUL, CR or LF. NIOHTTP2's own header validation is off on both sides: it
/// cost a tenth of a request's CPU, and this pass replaces it.
enum HTTP2HeaderMapping {
    /// A request head from a client's HEADERS; nil when the block is malformed
    /// (the stream is then reset with PROTOCOL_ERROR).
    static func requestHead(_ block: HPACKHeaders) -> HTTPRequestHead? {
        var method: String?
        var scheme: String?
        var path: String?
        var authority: String?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count + 1)
        var hasHost = false
        for (name, value, _) in block {
            guard isValidValue(value) else { return nil }
            if name.utf8.first == UInt8(ascii: ":") {
                guard fields.isEmpty else { return nil }  // pseudo-header after a regular field
                switch name {
                case ":method" where method == nil: method = value
                case ":scheme" where scheme == nil: scheme = value
                case ":path" where path == nil: path = value
                case ":authority" where authority == nil: authority = value
                default: return nil  // unknown or repeated
                }
                continue
            }
            guard isValidRegularName(name), !isConnectionSpecific(name) else { return nil }
            if name == "te" && value != "trailers" { return nil }
            if name == "content-length" && !isValidContentLength(value) { return nil }
            hasHost = hasHost || name == "host"
            fields.append((name, value))
        }
        guard let method, isValidMethod(method), scheme != nil, let path, isValidPath(path) else { return nil }
        if let authority, !hasHost {
            fields.append(("host", authority))
        }
        return HTTPRequestHead(
            version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: HTTPHeaders(fields))
    }

    /// The status and fields of an endpoint's response HEADERS; nil when the
    /// block is malformed or `:status` is missing or not three digits.
    static func response(_ block: HPACKHeaders) -> (status: HTTPResponseStatus, headers: HTTPHeaders)? {
        var status: HTTPResponseStatus?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            guard isValidValue(value) else { return nil }
            if name.utf8.first == UInt8(ascii: ":") {
                guard name == ":status", status == nil, fields.isEmpty,
                      value.utf8.count == 3, let code = Int(value), code >= 100 else { return nil }
                status = HTTPResponseStatus(statusCode: code)
                continue
            }
            guard isValidRegularName(name), !isConnectionSpecific(name) else { return nil }
            if name == "content-length" && !isValidContentLength(value) { return nil }
            fields.append((name, value))
        }
        guard let status else { return nil }
        return (status, HTTPHeaders(fields))
    }

    /// Trailers; nil when the block is malformed (trailers carry no pseudo-header fields).
    static func trailers(_ block: HPACKHeaders) -> HTTPHeaders? {
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            guard isValidValue(value), isValidRegularName(name), !isConnectionSpecific(name) else { return nil }
            fields.append((name, value))
        }
        return HTTPHeaders(fields)
    }

    /// The method becomes the first word of an HTTP/1.1 request line: a token.
    private static func isValidMethod(_ method: String) -> Bool {
        !method.isEmpty && method.utf8.allSatisfy(HTTP1Parser.isTokenByte)
    }

    /// An origin-form path (or `*`) without spaces or control characters, so
    /// that it stays one word of an HTTP/1.1 request line.
    private static func isValidPath(_ path: String) -> Bool {
        guard let first = path.utf8.first, first == UInt8(ascii: "/") || path == "*" else { return false }
        return path.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F }
    }

    /// Digits only: the value is forwarded as the HTTP/1.1 body length, where
    /// `+5` or `5, 5` could be read differently by the endpoint.
    private static func isValidContentLength(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 18 && value.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// A lowercase token (RFC 9113 section 8.2.1).
    private static func isValidRegularName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { HTTP1Parser.isTokenByte($0) && !($0 >= 0x41 && $0 <= 0x5A) }
    }

    /// No NUL, CR or LF anywhere (RFC 9113 section 8.2.1): they would split
    /// the field when it crosses to HTTP/1.1.
    private static func isValidValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 == 0 || $0 == 0x0A || $0 == 0x0D }
    }

    /// RFC 9113 section 8.2.2: these make a message malformed in HTTP/2.
    private static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {
        case 7: name == "upgrade"
        case 10: name == "connection" || name == "keep-alive"
        case 16: name == "proxy-connection"
        case 17: name == "transfer-encoding"
        default: false
        }
    }

    /// The HEADERS block for an upstream request; `Host` becomes `:authority`.
    static func requestBlock(_ head: HTTPRequestHead) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(head.headers.count + 3)
        block.add(name: ":method", value: head.method.rawValue)
        block.add(name: ":scheme", value: "http")
        block.add(name: ":path", value: head.uri)
        if let host = head.headers.first(name: "host") {
            block.add(name: ":authority", value: host)
        }
        for (name, value) in head.headers where !name.isHostFieldName {
            add(lowercased(name), value, to: &block)
        }
        return block
    }

    /// The HEADERS block for a response to a client.
    static func responseBlock(status: HTTPResponseStatus, headers: HTTPHeaders) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(headers.count + 1)
        block.add(name: ":status", value: String(status.code))
        appendRegular(headers, to: &block)
        return block
    }

    /// Trailers, or any block without pseudo-headers.
    static func fieldBlock(_ headers: HTTPHeaders) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(headers.count)
        appendRegular(headers, to: &block)
        return block
    }

    private static func appendRegular(_ headers: HTTPHeaders, to block: inout HPACKHeaders) {
        for (name, value) in headers {
            add(lowercased(name), value, to: &block)
        }
    }

    /// The request id is new on every request: indexing it in the HPACK
    /// table would only evict the fields that do repeat (and cost a table
    /// insertion per request), so it goes out as a literal.
    private static func add(_ name: String, _ value: String, to block: inout HPACKHeaders) {
        let indexing: HPACKIndexing = name == HeaderHygiene.requestIDHeader ? .nonIndexable : .indexable
        block.add(name: name, value: value, indexing: indexing)
    }

    /// HTTP/2 field names are lowercase; HTTP/1.1 peers may send any case.
    private static func lowercased(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
    }
}

extension String {
    /// `Host` in any letter case.
    fileprivate var isHostFieldName: Bool {
        utf8.count == 4 && zip(utf8, "host".utf8).allSatisfy { $0 | 0x20 == $1 }
    }
}
