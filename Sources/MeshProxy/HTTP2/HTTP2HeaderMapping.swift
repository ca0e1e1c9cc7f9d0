import NIOHPACK
import NIOHTTP1

/// Translates between HTTP/2 header blocks and the HTTP/1-shaped heads the
/// exchange works with (RFC 9113 section 8.3: pseudo-header fields first,
/// `:authority` for `Host`, lowercase names, no connection-specific fields;
/// the exchange already removed those).
enum HTTP2HeaderMapping {
    /// A request head from a client's HEADERS; nil when a required
    /// pseudo-header is missing (NIOHTTP2 already rejected malformed blocks).
    static func requestHead(_ block: HPACKHeaders) -> HTTPRequestHead? {
        var method: String?
        var path: String?
        var authority: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break
                }
            } else {
                headers.add(name: name, value: value)
            }
        }
        guard let method, let path else { return nil }
        if let authority, !headers.contains(name: "host") {
            headers.add(name: "host", value: authority)
        }
        return HTTPRequestHead(version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
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

    /// The status from an upstream's response HEADERS; nil when `:status` is missing or not a number.
    static func responseStatus(_ block: HPACKHeaders) -> HTTPResponseStatus? {
        guard let status = block.first(name: ":status"), let code = Int(status) else { return nil }
        return HTTPResponseStatus(statusCode: code)
    }

    /// Regular (non-pseudo) fields of a block, for response heads and trailers.
    static func regularFields(_ block: HPACKHeaders) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        for (name, value, _) in block where name.utf8.first != UInt8(ascii: ":") {
            headers.add(name: name, value: value)
        }
        return headers
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
