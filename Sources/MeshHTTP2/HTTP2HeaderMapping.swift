import MeshHTTP1
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
/// NUL, CR or LF. `HTTP2ConnectionCodec` leaves fields to this pass, which
/// already looks at each of them once.
package enum HTTP2HeaderMapping {
    /// A request head from a client's HEADERS, with the body length it
    /// declares; nil when the block is malformed (the stream is then reset
    /// with PROTOCOL_ERROR).
    package static func requestHead(_ block: HPACKHeaders) -> (head: HTTPRequestHead, contentLength: Int?)? {
        var method: String?
        var scheme: String?
        var path: String?
        var authority: String?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count + 1)
        var contentLength: Int?
        var host: String?
        for (name, value, _) in block {
            guard isValidValue(value) else { return nil }
            if name.utf8.first == UInt8(ascii: ":") {
                guard fields.isEmpty else { return nil }  // pseudo-header after a regular field
                switch name {
                case ":method" where method == nil: method = value
                case ":scheme" where scheme == nil: scheme = value
                case ":path" where path == nil: path = value
                case ":authority" where authority == nil && RequestAuthority.isValidHost(value): authority = value
                default: return nil  // unknown or repeated
                }
                continue
            }
            guard isValidRegularName(name), !isConnectionSpecific(name) else { return nil }
            if name == "te" && value != "trailers" { return nil }
            if name == "content-length" {
                guard let length = declaredLength(value, previous: contentLength) else { return nil }
                contentLength = length
            }
            if name == "host" {
                // One Host, and the same as :authority (RFC 9113 section 8.3.1).
                guard host == nil, RequestAuthority.isValidHost(value),
                      authority.map({ $0.utf8.equalsIgnoringASCIICase(value.utf8) }) ?? true else {
                    return nil
                }
                host = value
            }
            fields.append((name, value))
        }
        guard let method, isValidMethod(method), scheme != nil, let path, isValidPath(path) else { return nil }
        if let authority, host == nil {
            fields.append(("host", authority))
        }
        let head = HTTPRequestHead(
            version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: HTTPHeaders(fields))
        return (head, contentLength)
    }

    /// The status, fields and declared body length of an endpoint's response
    /// HEADERS; nil when the block is malformed or `:status` is missing or
    /// not three digits.
    package static func response(_ block: HPACKHeaders)
        -> (status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?)? {
        var status: HTTPResponseStatus?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        var contentLength: Int?
        for (name, value, _) in block {
            guard isValidValue(value) else { return nil }
            if name.utf8.first == UInt8(ascii: ":") {
                guard name == ":status", status == nil, fields.isEmpty,
                      value.utf8.count == 3, let code = Int(value), code >= 100 else { return nil }
                status = HTTPResponseStatus(statusCode: code)
                continue
            }
            guard isValidRegularName(name), !isConnectionSpecific(name) else { return nil }
            if name == "content-length" {
                guard let length = declaredLength(value, previous: contentLength) else { return nil }
                contentLength = length
            }
            fields.append((name, value))
        }
        guard let status else { return nil }
        return (status, HTTPHeaders(fields), contentLength)
    }

    /// Trailers; nil when the block is malformed (trailers carry no pseudo-header fields).
    package static func trailers(_ block: HPACKHeaders) -> HTTPHeaders? {
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
        method.isToken(uppercase: true)
    }

    /// An origin-form path (or `*`) without spaces or control characters, so
    /// that it stays one word of an HTTP/1.1 request line.
    private static func isValidPath(_ path: String) -> Bool {
        guard let first = path.utf8.first, first == UInt8(ascii: "/") || path == "*" else { return false }
        return path.allBytes { $0 > 0x20 && $0 != 0x7F }
    }

    /// A `content-length` value: digits only, as the value is forwarded as
    /// the HTTP/1.1 body length, where `+5` or `5, 5` could be read
    /// differently by the endpoint; a repeated field must agree. Nil when
    /// the field makes the message malformed.
    private static func declaredLength(_ value: String, previous: Int?) -> Int? {
        guard !value.isEmpty, value.utf8.count <= 18, value.allBytes({ $0 >= 0x30 && $0 <= 0x39 }),
              let length = Int(value), previous == nil || previous == length else { return nil }
        return length
    }

    /// A lowercase token (RFC 9113 section 8.2.1).
    private static func isValidRegularName(_ name: String) -> Bool {
        name.isToken(uppercase: false)
    }

    /// No NUL, CR or LF anywhere (RFC 9113 section 8.2.1): they would split
    /// the field when it crosses to HTTP/1.1.
    private static func isValidValue(_ value: String) -> Bool {
        value.allBytes { $0 != 0 && $0 != 0x0A && $0 != 0x0D }
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
    package static func requestBlock(_ head: HTTPRequestHead) -> HPACKHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(head.headers.count + 3)
        fields.append((":method", head.method.rawValue))
        fields.append((":scheme", "http"))
        fields.append((":path", head.uri))
        var authority: String?
        for (name, value) in head.headers {
            if name.isHostFieldName {
                authority = authority ?? value
            } else {
                appendRegular(name, value, to: &fields)
            }
        }
        if let authority {
            fields.insert((":authority", authority), at: 3)
        }
        return HPACKHeaders(fields)
    }

    /// The HEADERS block for a response to a client.
    package static func responseBlock(status: HTTPResponseStatus, headers: HTTPHeaders) -> HPACKHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count + 1)
        // Nearly every response is a 200: its status needs no formatting.
        fields.append((":status", status == .ok ? "200" : String(status.code)))
        for (name, value) in headers {
            appendRegular(name, value, to: &fields)
        }
        return HPACKHeaders(fields)
    }

    /// Trailers, or any block without pseudo-headers.
    package static func fieldBlock(_ headers: HTTPHeaders) -> HPACKHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            appendRegular(name, value, to: &fields)
        }
        return HPACKHeaders(fields)
    }

    /// Appends a regular field with its name in lowercase.
    private static func appendRegular(_ name: String, _ value: String, to fields: inout [(String, String)]) {
        fields.append((lowercased(name), value))
    }

    /// HTTP/2 field names are lowercase; HTTP/1.1 peers may send any case.
    private static func lowercased(_ name: String) -> String {
        name.allBytes { !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) } ? name : name.lowercased()
    }
}

extension String {
    /// Whether every UTF-8 byte satisfies `predicate`. Scans the string's
    /// contiguous storage, several times faster than iterating its UTF-8
    /// view, which matters for checks that run on every field of every request.
    @inline(__always)
    package func allBytes(_ predicate: (UInt8) -> Bool) -> Bool {
        utf8.withContiguousStorageIfAvailable { $0.allSatisfy(predicate) } ?? utf8.allSatisfy(predicate)
    }

    /// `Host` in any letter case.
    fileprivate var isHostFieldName: Bool {
        utf8.count == 4 && zip(utf8, "host".utf8).allSatisfy { $0 | 0x20 == $1 }
    }
}
