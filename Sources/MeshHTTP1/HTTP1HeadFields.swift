import NIOCore
import NIOHTTP1

/// The field lines of one head, with the fields that frame the message
/// picked out while they are parsed.
struct HeadFields {
    private var fields: [(String, String)] = []
    package private(set) var contentLength: Int?
    package private(set) var transferEncoding: [String]?
    private var connectionClose = false
    private var connectionKeepAlive = false

    package var headers: HTTPHeaders { HTTPHeaders(fields) }

    package mutating func removeContentLength() {
        fields.removeAll { $0.0.utf8.equalsIgnoringASCIICase("content-length".utf8) }
        contentLength = nil
    }

    package func keepAlive(version: HTTPVersion) -> Bool {
        if connectionClose { return false }
        return version.minor >= 1 || connectionKeepAlive
    }

    /// Parses `field-name ":" OWS field-value OWS` lines separated by CR LF.
    /// Lines are split at LF; `findEndOfHead` checked that each LF follows a
    /// CR, and a CR anywhere else in a line fails as an invalid byte (a bare
    /// CR must never end a line, or it would hide a field from other parsers).
    package mutating func parse(_ section: UnsafeRawBufferPointer) throws(HTTP1ParseError) {
        var lineStart = 0
        while lineStart < section.count {
            let lf = section[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? section.count
            try parseLine(UnsafeRawBufferPointer(rebasing: section[lineStart..<(lf - 1)]))
            lineStart = lf + 1
        }
    }

    private mutating func parseLine(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) {
        guard let first = line.first else { throw .malformed("empty header line") }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            throw .malformed("obsolete line folding in header")
        }
        var colon = 0
        while colon < line.count && HTTP1Parser.isTokenByte(line[colon]) {
            colon += 1
        }
        guard colon < line.count, line[colon] == UInt8(ascii: ":"), colon > 0 else {
            throw .malformed("invalid header name")
        }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd && (line[valueStart] == 0x20 || line[valueStart] == 0x09) {
            valueStart += 1
        }
        while valueEnd > valueStart && (line[valueEnd - 1] == 0x20 || line[valueEnd - 1] == 0x09) {
            valueEnd -= 1
        }
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
        for byte in value where !HTTP1Parser.isFieldValueByte(byte) {
            throw .malformed("invalid character in header value")
        }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let valueString = String(decoding: value, as: UTF8.self)
        try notice(name: name, value: value, valueString: valueString)
        fields.append((String(decoding: name, as: UTF8.self), valueString))
    }

    /// Records the fields that frame the message or decide keep-alive.
    private mutating func notice(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, valueString: String
    ) throws(HTTP1ParseError) {
        switch name.count {
        case 14 where name.equalsIgnoringCase("content-length"):
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .malformed("invalid Content-Length")
            }
            let length = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            if let contentLength, contentLength != length {
                throw .malformed("conflicting Content-Length values")
            }
            contentLength = length
        case 17 where name.equalsIgnoringCase("transfer-encoding"):
            transferEncoding = (transferEncoding ?? []) + [valueString]
        case 10 where name.equalsIgnoringCase("connection"):
            // Comma-separated tokens with optional whitespace around them.
            var tokenStart = 0
            while tokenStart < value.count {
                let tokenEnd = value[tokenStart...].firstIndex(of: UInt8(ascii: ",")) ?? value.count
                var start = tokenStart
                var end = tokenEnd
                while start < end && (value[start] == 0x20 || value[start] == 0x09) { start += 1 }
                while end > start && (value[end - 1] == 0x20 || value[end - 1] == 0x09) { end -= 1 }
                let token = UnsafeRawBufferPointer(rebasing: value[start..<end])
                if token.equalsIgnoringCase("close") {
                    connectionClose = true
                } else if token.equalsIgnoringCase("keep-alive") {
                    connectionKeepAlive = true
                }
                tokenStart = tokenEnd + 1
            }
        default:
            break
        }
    }
}

extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive comparison with a lowercase literal.
    fileprivate func equalsIgnoringCase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: count)
        for index in 0..<count where self[index] | 0x20 != expected[index] {
            return false
        }
        return true
    }
}
