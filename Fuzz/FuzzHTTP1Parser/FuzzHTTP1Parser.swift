import FuzzSupport
import NIOCore
import NIOHTTP1

@testable import MeshHTTP1

// The HTTP/1.1 parser, on requests and responses split across reads in
// every way. Invariants:
// - the parts do not depend on how the bytes were split (one read or many);
// - nothing comes after an error, and the parser stays failed;
// - the bytes it holds never exceed its head limit (or the chunk-line limit);
// - every message parsed, written out again, parses to the same parts.

/// A parser's output, flattened for comparison; bodies merged.
enum Part: Equatable {
    case request(method: String, uri: String, minor: Int, fields: [String], framing: HTTP1Framing)
    case response(status: UInt, minor: Int, fields: [String], framing: HTTP1Framing)
    case body([UInt8])
    case end(trailers: [String]?)
    /// Which error is not compared: it may depend on where the reads ended
    /// (a head found too long before its broken line arrived).
    case failed
}

struct Setup {
    var kind: HTTP1Parser.Kind
    var respondingToHEAD: Bool
    var maxHeadBytes: Int
}

func lines(_ headers: HTTPHeaders) -> [String] {
    headers.map { "\($0.name): \($0.value)" }
}

func parse(_ reads: [[UInt8]], _ setup: Setup) -> [Part] {
    var parser = HTTP1Parser(kind: setup.kind, maxHeadBytes: setup.maxHeadBytes)
    parser.respondingToHEAD = setup.respondingToHEAD
    var parts: [Part] = []
    func note(_ event: HTTP1Parser.Event) {
        require(parts.last != .failed, "an event after an error")
        switch event {
        case .request(let head, let framing):
            parts.append(.request(
                method: head.method.rawValue, uri: head.uri, minor: head.version.minor, fields: lines(head.headers),
                framing: framing))
        case .response(let head, let framing):
            parts.append(.response(status: head.status.code, minor: head.version.minor, fields: lines(head.headers),
                                   framing: framing))
        case .body(let buffer):
            require(buffer.readableBytes > 0, "an empty body part")
            if case .body(let earlier) = parts.last {
                parts[parts.count - 1] = .body(earlier + Array(buffer.readableBytesView))
            } else {
                parts.append(.body(Array(buffer.readableBytesView)))
            }
        case .end(let trailers):
            parts.append(.end(trailers: trailers.map(lines)))
        }
    }
    for read in reads {
        parser.append(ByteBuffer(bytes: read))
        do {
            while let event = try parser.next() {
                note(event)
            }
        } catch {
            if parts.last != .failed {
                parts.append(.failed)
            }
        }
        let bound = max(setup.maxHeadBytes, HTTP1Parser.maxChunkLineBytes)
        require(parser.bufferedBytes <= bound, "holds \(parser.bufferedBytes) bytes, above \(bound)")
    }
    if let event = parser.endOfInput() {
        note(event)
    }
    if parts.last == .failed {
        parser.append(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)))
        require((try? parser.next()) == nil, "a failed parser parsed on")
    }
    return parts
}

/// The message whose parts start at `parts[start]` written out again, and where the next begins.
func serialize(_ parts: [Part], from start: Int) -> (bytes: [UInt8], next: Int)? {
    var text: [UInt8] = []
    var chunked = false
    switch parts[start] {
    case .request(let method, let uri, let minor, let fields, let framing):
        text += Array("\(method) \(uri) HTTP/1.\(minor)\r\n".utf8)
        text += fieldBytes(fields)
        chunked = framing.hasBody && endsChunked(fields)
    case .response(let status, let minor, let fields, let framing):
        text += Array("HTTP/1.\(minor) \(status) X\r\n".utf8)
        text += fieldBytes(fields)
        chunked = framing.hasBody && endsChunked(fields)
    default:
        return nil
    }
    var index = start + 1
    while index < parts.count {
        switch parts[index] {
        case .body(let body):
            text += chunked ? Array(String(body.count, radix: 16).utf8) + [13, 10] + body + [13, 10] : body
        case .end(let trailers):
            if chunked {
                text += Array("0\r\n".utf8) + fieldBytes(trailers ?? [])
            }
            return (text, index + 1)
        default:
            return nil
        }
        index += 1
    }
    return nil  // the message did not end
}

/// Whether the last transfer coding the fields name is chunked (empty list
/// elements, such as a second, empty Transfer-Encoding field, name none).
func endsChunked(_ fields: [String]) -> Bool {
    let codings = fields.filter { $0.utf8.count >= 18 && $0.prefix(18).utf8.equalsIgnoringASCIICase("transfer-encoding:".utf8) }
        .flatMap { $0.dropFirst(18).split(separator: ",") }
        .map { $0.trimmingOptionalWhitespace() }
        .filter { !$0.isEmpty }
    return codings.last?.utf8.equalsIgnoringASCIICase("chunked".utf8) ?? false
}

/// Parts compared as a round trip: a response's keep-alive may change, as
/// the parser drops a Content-Length that came with Transfer-Encoding and
/// closes such a connection; written out again, the length is gone.
func roundTripped(_ parts: [Part]) -> [Part] {
    parts.map { part in
        guard case .response(let status, let minor, let fields, var framing) = part else { return part }
        framing.keepAlive = true
        return .response(status: status, minor: minor, fields: fields, framing: framing)
    }
}

func fieldBytes(_ fields: [String]) -> [UInt8] {
    fields.flatMap { Array($0.utf8) + [13, 10] } + [13, 10]
}

@_cdecl("FuzzHTTP1Parser_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let setup = Setup(
            kind: flags & 1 == 0 ? .request : .response, respondingToHEAD: flags & 2 != 0,
            maxHeadBytes: 64 + Int(input.byte()) * 16)
        let (message, reads) = input.reads()
        let split = parse(reads, setup)
        let whole = parse([message], setup)
        require(split == whole, "the parts depend on the reads: \(split) vs \(whole)")
        // Each complete message, written out again, parses to the same parts.
        var start = 0
        while start < whole.count, let (again, next) = serialize(whole, from: start) {
            let expected = Array(whole[start..<next])
            // Bytes that are not UTF-8 come back as U+FFFD, three bytes each:
            // the head may grow past the limit it was parsed under.
            var roomy = setup
            roomy.maxHeadBytes = setup.maxHeadBytes * 4
            let reparsed = parse([again], roomy)
            require(roundTripped(reparsed) == roundTripped(expected), "\(expected) written out parses as \(reparsed)")
            start = next
        }
    }
}
