import NIOCore
import NIOHTTP1

/// The first line of a message, and the Transfer-Encoding codings that
/// decide how its body is framed.
extension HTTP1Parser {
    // MARK: Start lines

    enum StartLine {
        case request(HTTPMethod, String, HTTPVersion)
        case status(HTTPResponseStatus, HTTPVersion)
    }

    /// `method SP request-target SP HTTP-version`
    static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> StartLine {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > 0 else {
            throw .malformed("invalid request line")
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[0..<firstSpace])
        guard methodBytes.allSatisfy(isTokenByte) else { throw .malformed("invalid method") }
        let rest = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)...])
        guard rest.count > 9, rest[rest.count - 9] == UInt8(ascii: " ") else {
            throw .malformed("invalid request line")
        }
        let target = UnsafeRawBufferPointer(rebasing: rest[0..<(rest.count - 9)])
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw .malformed("invalid request target")
        }
        let version = try parseVersion(UnsafeRawBufferPointer(rebasing: rest[(rest.count - 8)...]))
        return .request(method(methodBytes), String(decoding: target, as: UTF8.self), version)
    }

    /// `HTTP-version SP status-code SP [ reason-phrase ]`
    static func parseStatusLine(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> StartLine {
        guard line.count >= 12, line[8] == UInt8(ascii: " "),
              line.count == 12 || line[12] == UInt8(ascii: " ") else {
            throw .malformed("invalid status line")
        }
        let version = try parseVersion(UnsafeRawBufferPointer(rebasing: line[0..<8]))
        var code = 0
        for byte in line[9..<12] {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { throw .malformed("invalid status code") }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard code >= 100 else { throw .malformed("invalid status code") }
        return .status(HTTPResponseStatus(statusCode: code), version)
    }

    static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> HTTPVersion {
        // "HTTP/1.1" or "HTTP/1.0"; other versions are not HTTP/1.
        guard bytes.count == 8, bytes.starts(with: "HTTP/1.".utf8),
              bytes[7] == UInt8(ascii: "1") || bytes[7] == UInt8(ascii: "0") else {
            throw .malformed("unsupported HTTP version")
        }
        return bytes[7] == UInt8(ascii: "1") ? .http1_1 : .http1_0
    }

    /// The common methods without building a string first.
    static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        switch bytes.count {
        case 3 where bytes.elementsEqual("GET".utf8): return .GET
        case 3 where bytes.elementsEqual("PUT".utf8): return .PUT
        case 4 where bytes.elementsEqual("POST".utf8): return .POST
        case 4 where bytes.elementsEqual("HEAD".utf8): return .HEAD
        case 5 where bytes.elementsEqual("PATCH".utf8): return .PATCH
        case 6 where bytes.elementsEqual("DELETE".utf8): return .DELETE
        case 7 where bytes.elementsEqual("OPTIONS".utf8): return .OPTIONS
        default: return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
        }
    }

    // MARK: Transfer-Encoding

    /// The codings a field value lists. Empty elements are skipped, as RFC
    /// 9110 section 5.6.1.2 asks of a recipient, wherever they are: in
    /// `chunked, ` as in a second, empty Transfer-Encoding field.
    static func codings(_ value: String) -> [Substring] {
        value.split(separator: ",").map { $0.trimmingOptionalWhitespace() }.filter { !$0.isEmpty }
    }

    // Codings compare as ASCII only: Unicode case folding would take
    // "chun\u{212A}ed" (a Kelvin sign) for chunked, a spelling no other
    // parser on the way reads the same.
    static func isExactlyChunked(_ values: [String]) -> Bool {
        let all = values.flatMap(codings)
        return all.count == 1 && all[0].utf8.equalsIgnoringASCIICase("chunked".utf8)
    }

    static func isChunkedLast(_ values: [String]) -> Bool {
        let all = values.flatMap(codings)
        return all.last?.utf8.equalsIgnoringASCIICase("chunked".utf8) ?? false
    }
}
