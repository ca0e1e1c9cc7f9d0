import NIOCore
import NIOHTTP1

/// Why bytes from a peer are not acceptable HTTP/1.1.
package enum HTTP1ParseError: Error, Equatable {
    /// Answered with 400; the reason goes into the local response.
    case malformed(String)
    /// The head is longer than the parser accepts; answered with 431.
    case headTooLarge
}

/// How the message whose head was just parsed continues.
package struct HTTP1Framing: Equatable {
    /// The connection may carry another message after this one.
    package var keepAlive: Bool
    /// A body follows the head (Content-Length above zero, chunked, or until close).
    package var hasBody: Bool
}

/// An incremental HTTP/1.1 parser (RFC 9112) for one connection's requests
/// or responses. Bytes go in with `append`; `next` returns the message parts
/// as they complete. Bodies come out as slices of the bytes read, without
/// copies. Strict where leniency enables request smuggling: CR LF line
/// endings only, no obsolete line folding, no whitespace before a colon,
/// Content-Length and Transfer-Encoding never together in a request,
/// conflicting Content-Length values refused.
package struct HTTP1Parser {
    package enum Kind {
        case request
        case response
    }

    package enum Event {
        case request(HTTPRequestHead, HTTP1Framing)
        case response(HTTPResponseHead, HTTP1Framing)
        case body(ByteBuffer)
        /// The message ended, with its trailers if a chunked body had any.
        case end(HTTPHeaders?)
    }

    private enum State: Equatable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// A parse error: nothing more is parsed on this connection.
        case failed
    }

    /// Chunk-size lines (with extensions) longer than this are refused.
    package static let maxChunkLineBytes = 4096

    package let kind: Kind
    /// Heads (and trailer sections) longer than this fail with `headTooLarge`.
    package var maxHeadBytes: Int
    /// Responses: the request was HEAD, so the response has no body whatever its headers say.
    package var respondingToHEAD = false
    private var state = State.head
    private var buffer: ByteBuffer?
    /// Where the search for the end of the head resumes: the start of its
    /// first incomplete line, so no byte is scanned twice.
    private var scanFrom = 0

    package init(kind: Kind, maxHeadBytes: Int) {
        self.kind = kind
        self.maxHeadBytes = maxHeadBytes
    }

    /// Bytes read but not yet returned as parts.
    package var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    package mutating func append(_ bytes: ByteBuffer) {
        guard state != .failed else { return }
        if var buffered = buffer, buffered.readableBytes > 0 {
            var incoming = bytes
            buffer = nil  // keep the storage uniquely referenced while appending
            buffered.writeBuffer(&incoming)
            buffer = buffered
        } else {
            buffer = bytes
        }
    }

    /// The peer closed its side: a body read until close ends here.
    package mutating func endOfInput() -> Event? {
        guard state == .untilClose else { return nil }
        state = .head
        return .end(nil)
    }

    /// The next complete part, or nil until more bytes arrive.
    package mutating func next() throws(HTTP1ParseError) -> Event? {
        do {
            return try step()
        } catch {
            state = .failed
            buffer = nil
            throw error
        }
    }

    private mutating func step() throws(HTTP1ParseError) -> Event? {
        switch state {
        case .head:
            return try parseHead()
        case .fixedBody(let remaining):
            if remaining == 0 {
                state = .head
                return .end(nil)
            }
            guard let body = takeBody(upTo: remaining) else { return nil }
            state = .fixedBody(remaining: remaining - body.readableBytes)
            return .body(body)
        case .chunkSize:
            guard let size = try parseChunkSize() else { return nil }
            if size == 0 {
                state = .trailers
                return try step()
            }
            state = .chunkData(remaining: size)
            return try step()
        case .chunkData(let remaining):
            guard let body = takeBody(upTo: remaining) else { return nil }
            let left = remaining - body.readableBytes
            state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            return .body(body)
        case .chunkDataEnd:
            guard var bytes = buffer, bytes.readableBytes >= 2 else { return nil }
            guard bytes.readInteger(as: UInt16.self) == 0x0D0A else {
                throw .malformed("chunk data not followed by CRLF")
            }
            buffer = bytes
            state = .chunkSize
            return try step()
        case .trailers:
            guard let end = try findEndOfHead(allowEmpty: true) else { return nil }
            let trailers = try takeTrailers(length: end)
            state = .head
            return .end(trailers)
        case .untilClose:
            guard var bytes = buffer, bytes.readableBytes > 0 else { return nil }
            buffer = nil
            return .body(bytes.readSlice(length: bytes.readableBytes)!)
        case .failed:
            return nil
        }
    }

    // MARK: Bodies

    /// Up to `limit` buffered body bytes, as a slice; nil when none are buffered.
    private mutating func takeBody(upTo limit: Int) -> ByteBuffer? {
        guard var bytes = buffer, bytes.readableBytes > 0 else { return nil }
        let length = min(limit, bytes.readableBytes)
        let slice = bytes.readSlice(length: length)!
        // An emptied buffer is dropped so the next read is used as it is, and
        // slices still being written never force a copy of shared storage.
        buffer = bytes.readableBytes > 0 ? bytes : nil
        return slice
    }

    /// `1*HEXDIG [ chunk-ext ] CRLF`; nil until the whole line is buffered.
    private mutating func parseChunkSize() throws(HTTP1ParseError) -> Int? {
        guard var bytes = buffer else { return nil }
        let parsed: (size: Int, lineLength: Int)?? = bytes.withUnsafeReadableBytes { raw in
            guard let lf = raw.firstIndex(of: UInt8(ascii: "\n")) else { return .some(nil) }
            guard lf > 0, raw[lf - 1] == UInt8(ascii: "\r") else { return nil }
            var size = 0
            var index = 0
            while index < lf - 1, let digit = raw[index].hexDigitValue {
                guard size <= (Int.max >> 4) else { return nil }
                size = size << 4 | digit
                index += 1
            }
            guard index > 0 else { return nil }
            // Optional whitespace, then nothing or extensions (`;name=value`),
            // which are ignored but must be made of visible characters.
            while index < lf - 1 && (raw[index] == UInt8(ascii: " ") || raw[index] == UInt8(ascii: "\t")) {
                index += 1
            }
            if index < lf - 1 {
                guard raw[index] == UInt8(ascii: ";") else { return nil }
                for byte in raw[index..<(lf - 1)] where !Self.isFieldValueByte(byte) {
                    return nil
                }
            }
            return .some((size, lf + 1))
        }
        guard let parsed else { throw .malformed("invalid chunk size") }
        guard let (size, lineLength) = parsed else {
            if bytes.readableBytes > Self.maxChunkLineBytes {
                throw .malformed("chunk size line too long")
            }
            return nil
        }
        bytes.moveReaderIndex(forwardBy: lineLength)
        buffer = bytes.readableBytes > 0 ? bytes : nil
        return size
    }

    // MARK: Heads

    /// The length of the head (through its empty line) once it is all buffered.
    /// Requests may be preceded by empty lines (RFC 9112 section 2.2), which are dropped.
    private mutating func findEndOfHead(allowEmpty: Bool) throws(HTTP1ParseError) -> Int? {
        guard var bytes = buffer else { return nil }
        if kind == .request && !allowEmpty && scanFrom == 0 {
            while bytes.readableBytes >= 2, bytes.getInteger(at: bytes.readerIndex, as: UInt16.self) == 0x0D0A {
                bytes.moveReaderIndex(forwardBy: 2)
            }
            buffer = bytes.readableBytes > 0 ? bytes : nil
            if bytes.readableBytes == 0 { return nil }
        }
        let start = scanFrom
        let found: Result<(end: Int?, lineStart: Int), HTTP1ParseError> = bytes.withUnsafeReadableBytes { raw in
            var lineStart = start
            var index = start
            while index < raw.count {
                guard let lf = raw[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
                guard lf > 0, raw[lf - 1] == UInt8(ascii: "\r") else {
                    return .failure(.malformed("line ending without CR"))
                }
                if lf - 1 == lineStart {
                    return .success((lf + 1, lineStart))
                }
                lineStart = lf + 1
                index = lf + 1
            }
            return .success((nil, lineStart))
        }
        let (end, lineStart) = try found.get()
        if let end {
            scanFrom = 0
            if end > maxHeadBytes { throw .headTooLarge }
            if end == 2 && !allowEmpty { throw .malformed("empty request line") }
            return end
        }
        scanFrom = lineStart
        if bytes.readableBytes > maxHeadBytes { throw .headTooLarge }
        return nil
    }

    private mutating func parseHead() throws(HTTP1ParseError) -> Event? {
        guard let length = try findEndOfHead(allowEmpty: false), var bytes = buffer else { return nil }
        let head = bytes.readSlice(length: length)!
        buffer = bytes.readableBytes > 0 ? bytes : nil
        var fields = HeadFields()
        let parsed: Result<StartLine, HTTP1ParseError> = head.withUnsafeReadableBytes { raw in
            Result { () throws(HTTP1ParseError) -> StartLine in
                let firstLF = raw.firstIndex(of: UInt8(ascii: "\n"))!
                let line = UnsafeRawBufferPointer(rebasing: raw[0..<(firstLF - 1)])
                let startLine = try kind == .request ? Self.parseRequestLine(line) : Self.parseStatusLine(line)
                try fields.parse(UnsafeRawBufferPointer(rebasing: raw[(firstLF + 1)..<(raw.count - 2)]))
                return startLine
            }
        }
        let startLine = try parsed.get()
        switch startLine {
        case .request(let method, let uri, let version):
            let framing = try requestFraming(fields, version: version)
            return .request(HTTPRequestHead(version: version, method: method, uri: uri, headers: fields.headers), framing)
        case .status(let status, let version):
            let framing = try responseFraming(&fields, version: version, status: status.code)
            return .response(HTTPResponseHead(version: version, status: status, headers: fields.headers), framing)
        }
    }

    private mutating func requestFraming(
        _ fields: HeadFields, version: HTTPVersion
    ) throws(HTTP1ParseError) -> HTTP1Framing {
        let keepAlive = fields.keepAlive(version: version)
        if let codings = fields.transferEncoding {
            guard fields.contentLength == nil else {
                throw .malformed("Content-Length together with Transfer-Encoding")
            }
            guard version.minor >= 1 else { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
            // The proxy decodes chunked and nothing else; any other coding would
            // reach the endpoint without the header that names it.
            guard Self.isExactlyChunked(codings) else {
                throw .malformed("unsupported Transfer-Encoding (only chunked is accepted)")
            }
            state = .chunkSize
            return HTTP1Framing(keepAlive: keepAlive, hasBody: true)
        }
        let length = fields.contentLength ?? 0
        state = .fixedBody(remaining: length)
        return HTTP1Framing(keepAlive: keepAlive, hasBody: length > 0)
    }

    private mutating func responseFraming(
        _ fields: inout HeadFields, version: HTTPVersion, status: UInt
    ) throws(HTTP1ParseError) -> HTTP1Framing {
        var keepAlive = fields.keepAlive(version: version)
        if respondingToHEAD || status < 200 || status == 204 || status == 304 {
            state = .fixedBody(remaining: 0)
            return HTTP1Framing(keepAlive: keepAlive, hasBody: false)
        }
        if let codings = fields.transferEncoding {
            if fields.contentLength != nil {
                // RFC 9112 section 6.3: Transfer-Encoding wins; the length must
                // not travel on with the decoded body, and the connection,
                // whose framing the endpoint got wrong, is not reused.
                fields.removeContentLength()
                keepAlive = false
            }
            if Self.isChunkedLast(codings) {
                state = .chunkSize
            } else {
                state = .untilClose
                keepAlive = false
            }
            return HTTP1Framing(keepAlive: keepAlive, hasBody: true)
        }
        if let length = fields.contentLength {
            state = .fixedBody(remaining: length)
            return HTTP1Framing(keepAlive: keepAlive, hasBody: length > 0)
        }
        state = .untilClose
        return HTTP1Framing(keepAlive: false, hasBody: true)
    }

    private mutating func takeTrailers(length: Int) throws(HTTP1ParseError) -> HTTPHeaders? {
        guard length > 2, var bytes = buffer else {
            if var bytes = buffer {
                bytes.moveReaderIndex(forwardBy: length)
                buffer = bytes.readableBytes > 0 ? bytes : nil
            }
            return nil
        }
        let section = bytes.readSlice(length: length)!
        buffer = bytes.readableBytes > 0 ? bytes : nil
        var fields = HeadFields()
        let parsed: Result<Void, HTTP1ParseError> = section.withUnsafeReadableBytes { raw in
            Result { () throws(HTTP1ParseError) in
                try fields.parse(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 2)]))
            }
        }
        try parsed.get()
        return fields.headers
    }

    // MARK: Bytes

    /// `tchar` (RFC 9110 section 5.6.2): ALPHA, DIGIT and
    /// ``!#$%&'*+-.^_`|~``, as one bit per byte below 128 so that the test is
    /// a shift and a mask, small enough to inline into every caller (the
    /// HTTP/2 header checks run it on every byte of every field name).
    @inlinable @inline(__always)
    package static func isTokenByte(_ byte: UInt8) -> Bool {
        let below64: UInt64 = 0x03FF_6CFA_0000_0000
        let from64: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        return byte < 64 ? (below64 >> byte) & 1 == 1 : byte < 128 && (from64 >> (byte &- 64)) & 1 == 1
    }

    /// Field content: HTAB, SP, visible ASCII and obs-text (RFC 9110 section 5.5).
    @inlinable @inline(__always)
    package static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }
}
