import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshProxy
@testable import MeshHTTP1

/// What a parser returned, flattened for comparison.
private enum Part: Equatable {
    case request(method: String, uri: String, version: Int, keepAlive: Bool, hasBody: Bool, headers: [String])
    case response(status: Int, keepAlive: Bool, hasBody: Bool)
    case body(String)
    case end(trailers: [String]?)
}

private func headerLines(_ headers: HTTPHeaders) -> [String] {
    headers.map { "\($0.name): \($0.value)" }
}

/// Feeds `chunks` one at a time and collects every part; body parts are
/// merged so the split does not change the result.
private func parse(
    _ chunks: [String], kind: HTTP1Parser.Kind = .request, maxHeadBytes: Int = 8192,
    respondingToHEAD: Bool = false, closeAtEnd: Bool = false
) throws -> [Part] {
    var parser = HTTP1Parser(kind: kind, maxHeadBytes: maxHeadBytes)
    parser.respondingToHEAD = respondingToHEAD
    var parts: [Part] = []
    func collect(_ event: HTTP1Parser.Event) {
        switch event {
        case .request(let head, let framing):
            parts.append(.request(
                method: head.method.rawValue, uri: head.uri, version: head.version.minor,
                keepAlive: framing.keepAlive, hasBody: framing.hasBody, headers: headerLines(head.headers)))
        case .response(let head, let framing):
            parts.append(.response(status: Int(head.status.code), keepAlive: framing.keepAlive, hasBody: framing.hasBody))
        case .body(let buffer):
            let text = String(buffer: buffer)
            if case .body(let previous) = parts.last {
                parts[parts.count - 1] = .body(previous + text)
            } else {
                parts.append(.body(text))
            }
        case .end(let trailers):
            parts.append(.end(trailers: trailers.map(headerLines)))
        }
    }
    for chunk in chunks {
        parser.append(ByteBuffer(string: chunk))
        while let event = try parser.next() {
            collect(event)
        }
    }
    if closeAtEnd, let end = parser.endOfInput() {
        collect(end)
    }
    return parts
}

private func bytewise(_ text: String) -> [String] {
    text.map { String($0) }
}

private func parseError(_ chunks: [String], kind: HTTP1Parser.Kind = .request, maxHeadBytes: Int = 8192) -> HTTP1ParseError? {
    do {
        _ = try parse(chunks, kind: kind, maxHeadBytes: maxHeadBytes)
        return nil
    } catch {
        return error as? HTTP1ParseError
    }
}

@Suite struct HTTP1RequestParserTests {
    @Test func getWithoutBodyEndsWithItsHead() throws {
        let parts = try parse(["GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept:  */*  \r\n\r\n"])
        #expect(parts == [
            .request(method: "GET", uri: "/a?b=1", version: 1, keepAlive: true, hasBody: false,
                     headers: ["Host: x", "Accept: */*"]),
            .end(trailers: nil),
        ])
    }

    @Test func bytesArrivingOneAtATimeGiveTheSameParts() throws {
        let request = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        #expect(try parse(bytewise(request)) == parse([request]))
        #expect(try parse([request]).last == .end(trailers: nil))
    }

    @Test func contentLengthBody() throws {
        let parts = try parse(["PUT /p HTTP/1.1\r\ncontent-length: 11\r\n\r\nhello", " world"])
        #expect(parts.dropFirst() == [.body("hello world"), .end(trailers: nil)])
        guard case .request(_, _, _, _, let hasBody, _) = parts.first else { Issue.record("no head"); return }
        #expect(hasBody)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let request = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
        for chunks in [[request], bytewise(request)] {
            let parts = try parse(chunks)
            #expect(parts.dropFirst() == [.body("hello world"), .end(trailers: ["X-Checksum: abc"])])
        }
    }

    @Test func chunkSizeMayBeFollowedByWhitespace() throws {
        let parts = try parse(["POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n2 ;x=y\r\n!!\r\n0\r\n\r\n"])
        #expect(parts.dropFirst() == [.body("ok!!"), .end(trailers: nil)])
    }

    @Test func chunkedBodyWithoutTrailers() throws {
        let parts = try parse(["POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"])
        #expect(parts.dropFirst() == [.body("0123456789"), .end(trailers: nil)])
    }

    // Found by FuzzHTTP1Parser: a second, empty Transfer-Encoding field
    // reads as chunked (the fuzz target's own reading of the codings was
    // wrong), while a blank element, `chunked, , `, was refused as a coding
    // of its own. Empty list elements name no coding wherever they are
    // (RFC 9110 section 5.6.1.2).
    @Test(arguments: [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n",
        "Transfer-Encoding: chunked, \r\n",
        "Transfer-Encoding: chunked, , \r\n",
        "Transfer-Encoding: , chunked, ,\r\n",
    ])
    func emptyTransferCodingsAreSkipped(_ fields: String) throws {
        let parts = try parse(["POST /c HTTP/1.1\r\n" + fields + "\r\n2\r\nok\r\n0\r\n\r\n"])
        #expect(parts.dropFirst() == [.body("ok"), .end(trailers: nil)])
        let response = try parse(["HTTP/1.1 200 OK\r\n" + fields + "\r\n2\r\nok\r\n0\r\n\r\n"], kind: .response)
        #expect(response == [.response(status: 200, keepAlive: true, hasBody: true), .body("ok"), .end(trailers: nil)])
    }

    @Test func pipelinedRequestsComeOutInOrder() throws {
        let parts = try parse(["GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\n\r\n"])
        let uris = parts.compactMap { part -> String? in
            if case .request(_, let uri, _, _, _, _) = part { return uri }
            return nil
        }
        #expect(uris == ["/1", "/2", "/3"])
        #expect(parts.filter { $0 == .end(trailers: nil) }.count == 3)
    }

    @Test func emptyLinesBeforeARequestAreIgnored() throws {
        let parts = try parse(["\r\n\r\nGET / HTTP/1.1\r\n\r\n"])
        #expect(parts.count == 2)
    }

    @Test func keepAliveFollowsVersionAndConnectionTokens() throws {
        func keepAlive(_ request: String) throws -> Bool? {
            guard case .request(_, _, _, let keepAlive, _, _) = try parse([request]).first else { return nil }
            return keepAlive
        }
        #expect(try keepAlive("GET / HTTP/1.1\r\n\r\n") == true)
        #expect(try keepAlive("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n") == false)
        #expect(try keepAlive("GET / HTTP/1.0\r\n\r\n") == false)
        #expect(try keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == true)
    }

    @Test func methodsOutsideTheCommonSetKeepTheirName() throws {
        guard case .request(let method, _, _, _, _, _) = try parse(["PROPFIND /d HTTP/1.1\r\n\r\n"]).first else {
            Issue.record("no head")
            return
        }
        #expect(method == "PROPFIND")
    }

    @Test(arguments: [
        "G@T / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: , ,\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        // A bare CR must not end a line: it would reveal a field other parsers do not see.
        "POST / HTTP/1.1\r\nX: y\rZTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n",
        // Tokens compare as ASCII: a Kelvin sign folds to "k" in Unicode, never here.
        "POST / HTTP/1.1\r\nTransfer-Encoding: chun\u{212A}ed\r\n\r\n0\r\n\r\n",
    ])
    func malformedRequestsAreRefused(_ request: String) {
        guard case .malformed = parseError([request]) else {
            Issue.record("accepted: \(request.debugDescription)")
            return
        }
    }

    @Test func identicalContentLengthsAreAccepted() throws {
        let parts = try parse(["POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"])
        #expect(parts.dropFirst() == [.body("ok"), .end(trailers: nil)])
    }

    @Test func headsOverTheLimitAreTooLarge() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 200) + "\r\n\r\n"
        #expect(parseError([big], maxHeadBytes: 100) == .headTooLarge)
        // Also while the head is still incomplete.
        #expect(parseError([String(big.dropLast(4))], maxHeadBytes: 100) == .headTooLarge)
    }

    @Test func nothingIsParsedAfterAnError() throws {
        var parser = HTTP1Parser(kind: .request, maxHeadBytes: 1024)
        parser.append(ByteBuffer(string: "BAD LINE\r\n\r\nGET / HTTP/1.1\r\n\r\n"))
        #expect(throws: HTTP1ParseError.self) { try parser.next() }
        #expect(try parser.next() == nil)
    }
}

@Suite struct HTTP1ResponseParserTests {
    @Test func contentLengthResponse() throws {
        let parts = try parse(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"], kind: .response)
        #expect(parts == [.response(status: 200, keepAlive: true, hasBody: true), .body("hi"), .end(trailers: nil)])
    }

    @Test func responseToHEADHasNoBody() throws {
        let parts = try parse(["HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"], kind: .response, respondingToHEAD: true)
        #expect(parts == [.response(status: 200, keepAlive: true, hasBody: false), .end(trailers: nil)])
    }

    @Test func noContentAndNotModifiedHaveNoBody() throws {
        for status in [204, 304] {
            let parts = try parse(["HTTP/1.1 \(status) X\r\n\r\n"], kind: .response)
            #expect(parts == [.response(status: status, keepAlive: true, hasBody: false), .end(trailers: nil)])
        }
    }

    @Test func interimResponseThenFinal() throws {
        let parts = try parse(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"], kind: .response)
        #expect(parts == [
            .response(status: 100, keepAlive: true, hasBody: false), .end(trailers: nil),
            .response(status: 201, keepAlive: true, hasBody: false), .end(trailers: nil),
        ])
    }

    @Test func bodyWithoutLengthEndsWhenTheConnectionCloses() throws {
        let parts = try parse(["HTTP/1.1 200 OK\r\n\r\nsome", " more"], kind: .response, closeAtEnd: true)
        #expect(parts == [
            .response(status: 200, keepAlive: false, hasBody: true), .body("some more"), .end(trailers: nil),
        ])
    }

    @Test func chunkedResponseWithTrailers() throws {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\ngrpc-status: 0\r\n\r\n"
        let parts = try parse(bytewise(response), kind: .response)
        #expect(parts == [
            .response(status: 200, keepAlive: true, hasBody: true), .body("hi"), .end(trailers: ["grpc-status: 0"]),
        ])
    }

    @Test func transferEncodingWinsOverContentLength() throws {
        var parser = HTTP1Parser(kind: .response, maxHeadBytes: 1024)
        parser.append(ByteBuffer(string:
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
        guard case .response(let head, let framing) = try parser.next() else {
            Issue.record("no head")
            return
        }
        #expect(!head.headers.contains(name: "content-length"), "the length must not travel with the decoded body")
        #expect(!framing.keepAlive, "a connection whose framing was contradictory is not reused")
        guard case .body(let body) = try parser.next() else {
            Issue.record("no body")
            return
        }
        #expect(String(buffer: body) == "hi")
    }

    @Test func reasonPhraseIsOptional() throws {
        let parts = try parse(["HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"], kind: .response)
        #expect(parts.first == .response(status: 404, keepAlive: true, hasBody: false))
    }

    @Test func malformedStatusLinesAreRefused() {
        for line in ["HTTP/1.1 2x0 OK", "HTTP/1.1 99 Low", "HTTP/3 200 OK", "HTTP/1.1 200OK"] {
            guard case .malformed = parseError([line + "\r\n\r\n"], kind: .response) else {
                Issue.record("accepted: \(line)")
                continue
            }
        }
    }
}

@Suite struct HTTP1OutboundTests {
    /// Writes through a real channel pipeline and returns what reached the socket.
    private func written(_ body: (inout HTTP1Outbound, ChannelHandlerContext) -> Void) throws -> String {
        let channel = EmbeddedChannel()
        let recorder = ContextRecorder()
        try channel.pipeline.syncOperations.addHandler(recorder)
        var outbound = HTTP1Outbound(allocator: channel.allocator)
        body(&outbound, recorder.context!)
        outbound.flush(recorder.context!)
        var text = ""
        while var part = try channel.readOutbound(as: ByteBuffer.self) {
            text += part.readString(length: part.readableBytes)!
        }
        return text
    }

    @Test func chunkedResponseWithTrailers() throws {
        let text = try written { outbound, context in
            outbound.writeStatusLine(.ok)
            outbound.writeFields(HTTPHeaders([("content-type", "text/plain")]))
            outbound.endHead(framing: .chunked)
            outbound.writeBody(ByteBuffer(string: String(repeating: "a", count: 26)), context: context)
            outbound.writeEnd(trailers: HTTPHeaders([("grpc-status", "0")]))
        }
        #expect(text == "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            + "1a\r\n" + String(repeating: "a", count: 26) + "\r\n0\r\ngrpc-status: 0\r\n\r\n")
    }

    @Test func largeBodiesAreWrittenWithoutCopyInOrder() throws {
        let large = String(repeating: "b", count: HTTP1Outbound.copyLimit + 1)
        let text = try written { outbound, context in
            outbound.writeRequestLine(method: .POST, uri: "/up")
            outbound.endHead(framing: .raw)
            outbound.writeBody(ByteBuffer(string: large), context: context)
            outbound.writeBody(ByteBuffer(string: "tail"), context: context)
            outbound.writeEnd(trailers: nil)
        }
        #expect(text == "POST /up HTTP/1.1\r\n\r\n" + large + "tail")
    }

    /// The bit masks say exactly RFC 9110's `tchar`, for every byte.
    @Test func tokenBytesAreExactlyTchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTP1Parser.isTokenByte(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }
}

/// Hands the test its handler context, so writes pass through the pipeline.
private final class ContextRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }
}
