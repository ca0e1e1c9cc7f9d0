import MeshConfig
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing

@testable import MeshProxy
@testable import MeshHTTP2
@testable import MeshLoopIO

@Suite struct HTTP2ReceiveWindowTests {
    @Test func returnsCreditInBatchesOfHalfTheWindow() {
        var window = HTTP2ReceiveWindow(size: 100)
        #expect(window.consumed(30) == nil)
        #expect(window.consumed(19) == nil)
        #expect(window.consumed(1) == 50)
        #expect(window.consumed(49) == nil)
        #expect(window.consumed(60) == 109)
    }
}

@Suite struct HTTP2DeclaredLengthTests {
    private func stream(declaring length: Int?) -> HTTP2Stream {
        let outbox = HTTP2FrameOutbox(batch: FlushBatch(eventLoop: EmbeddedEventLoop()))
        let stream = HTTP2Stream(id: HTTP2StreamID(1), outbox: outbox, receiveWindowSize: 65535)
        stream.declaredBodyBytesLeft = length
        return stream
    }

    @Test func bodyOfTheDeclaredLengthPasses() {
        let declared = stream(declaring: 10)
        #expect(declared.bodyMatchesDeclaredLength(received: 4, endStream: false))
        #expect(declared.bodyMatchesDeclaredLength(received: 6, endStream: true))
        #expect(stream(declaring: nil).bodyMatchesDeclaredLength(received: 1 << 20, endStream: true))
    }

    @Test func moreThanDeclaredIsMalformed() {
        let declared = stream(declaring: 5)
        #expect(!declared.bodyMatchesDeclaredLength(received: 6, endStream: false))
    }

    @Test func endingShortOfTheDeclaredLengthIsMalformed() {
        let declared = stream(declaring: 5)
        #expect(declared.bodyMatchesDeclaredLength(received: 3, endStream: false))
        #expect(!declared.bodyMatchesDeclaredLength(received: 0, endStream: true))
        #expect(!stream(declaring: 5).bodyMatchesDeclaredLength(received: 0, endStream: true))
    }
}

@Suite struct HTTP2HeaderMappingTests {
    @Test func requestHeadTakesPseudoHeadersAndAuthorityAsHost() throws {
        let block = HPACKHeaders([
            (":method", "POST"), (":scheme", "http"), (":path", "/user.UserService/Get"),
            (":authority", "user:50051"), ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        let head = try #require(HTTP2HeaderMapping.requestHead(block)).head
        #expect(head.method == .POST)
        #expect(head.uri == "/user.UserService/Get")
        #expect(head.headers["host"] == ["user:50051"])
        #expect(head.headers["content-type"] == ["application/grpc"])
        #expect(!head.headers.contains { $0.name.hasPrefix(":") })
    }

    /// RFC 9113 section 8.3.1: one Host, naming what :authority names.
    @Test func hostMustAgreeWithAuthority() {
        let base = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a.example")]
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders(base + [("host", "A.example")])) != nil)
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders(base + [("host", "b.example")])) == nil)
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders(base + [("host", "a.example"), ("host", "a.example")])) == nil)
    }

    @Test func requestWithoutPathIsRejected() {
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders([(":method", "GET")])) == nil)
    }

    /// RFC 9113 section 8.2, checked while converting (NIOHTTP2's validation is off).
    @Test(arguments: [
        [("x-a", "1"), (":method", "GET")],             // pseudo-header after a regular field
        [(":method", "GET"), (":method", "POST")],      // repeated pseudo-header
        [(":status", "200")],                           // response pseudo-header in a request
        [("X-Upper", "1")],                             // uppercase name
        [("bad name", "1")],                            // not a token
        [("x-a", "a\r\nx-injected: 1")],                // CR LF in a value
        [("x-a", "a\u{0}b")],                           // NUL in a value
        [("connection", "close")],                      // connection-specific
        [("transfer-encoding", "chunked")],
        [("te", "gzip")],                               // te other than trailers
        [("content-length", "+5")],                     // forwarded as an HTTP/1.1 length
        [("content-length", "5, 5")],
        [("content-length", "5"), ("content-length", "6")],  // repeated fields must agree
    ])
    func malformedRequestBlocksAreRejected(_ extra: [(String, String)]) {
        var fields = [(":method", "GET"), (":scheme", "http"), (":path", "/")]
        // Only the pseudo-header-after-a-field case goes before the pseudo-headers.
        if extra.first?.0.hasPrefix(":") == false && extra.contains(where: { $0.0.hasPrefix(":") }) {
            fields = extra + fields
        } else {
            fields += extra
        }
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders(fields)) == nil)
    }

    /// The method and path become words of an HTTP/1.1 request line.
    @Test(arguments: [("GET /admin", "/public"), ("GET", "/a b"), ("GET", "relative"), ("GET", "/a\u{7F}")])
    func methodAndPathMustStayOneWordEach(_ method: String, _ path: String) {
        let block = HPACKHeaders([(":method", method), (":scheme", "http"), (":path", path)])
        #expect(HTTP2HeaderMapping.requestHead(block) == nil)
    }

    @Test func requestHeadReportsTheDeclaredBodyLength() throws {
        let base = [(":method", "POST"), (":scheme", "http"), (":path", "/")]
        #expect(try #require(HTTP2HeaderMapping.requestHead(HPACKHeaders(base))).contentLength == nil)
        let declared = HPACKHeaders(base + [("content-length", "12"), ("content-length", "12")])
        #expect(try #require(HTTP2HeaderMapping.requestHead(declared)).contentLength == 12)
        let response = HPACKHeaders([(":status", "200"), ("content-length", "0")])
        #expect(try #require(HTTP2HeaderMapping.response(response)).contentLength == 0)
    }

    @Test func teTrailersIsAccepted() {
        let block = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", "/"), ("te", "trailers")])
        #expect(HTTP2HeaderMapping.requestHead(block) != nil)
    }

    @Test func trailersCarryNoPseudoHeaders() {
        #expect(HTTP2HeaderMapping.trailers(HPACKHeaders([("grpc-status", "0")]))?.count == 1)
        #expect(HTTP2HeaderMapping.trailers(HPACKHeaders([(":status", "200")])) == nil)
        #expect(HTTP2HeaderMapping.trailers(HPACKHeaders([("grpc-message", "a\nb")])) == nil)
    }

    @Test func requestBlockPutsPseudoHeadersFirstAndLowercasesNames() {
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/x?y=1",
            headers: HTTPHeaders([("X-Request-Id", "abc"), ("Host", "example"), ("accept", "*/*")]))
        let block = HTTP2HeaderMapping.requestBlock(head)
        #expect(block.map(\.name) == [":method", ":scheme", ":path", ":authority", "x-request-id", "accept"])
        #expect(block.first(name: ":authority") == "example")
        #expect(block.first(name: ":path") == "/x?y=1")
    }

    @Test func responseStatusAndFields() throws {
        let response = try #require(HTTP2HeaderMapping.response(HPACKHeaders([(":status", "503"), ("grpc-status", "14")])))
        #expect(response.status == .serviceUnavailable)
        #expect(response.headers.map(\.name) == ["grpc-status"])
        #expect(HTTP2HeaderMapping.response(HPACKHeaders([(":status", "x")])) == nil)
        #expect(HTTP2HeaderMapping.response(HPACKHeaders([("grpc-status", "14")])) == nil)
        let out = HTTP2HeaderMapping.responseBlock(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain")]))
        #expect(out.map(\.name) == [":status", "content-type"])
    }
}

@Suite struct GRPCTimeoutTests {
    @Test func parsesEveryUnit() {
        #expect(GRPCTimeout.parse("2H") == .hours(2))
        #expect(GRPCTimeout.parse("3M") == .minutes(3))
        #expect(GRPCTimeout.parse("5S") == .seconds(5))
        #expect(GRPCTimeout.parse("250m") == .milliseconds(250))
        #expect(GRPCTimeout.parse("7u") == .microseconds(7))
        #expect(GRPCTimeout.parse("99999999n") == .nanoseconds(99_999_999))
    }

    @Test(arguments: ["", "m", "5", "5s", "123456789m", "-5S", "1.5S", " 5S"])
    func refusesMalformedValues(_ value: String) {
        #expect(GRPCTimeout.parse(value) == nil)
    }

    @Test func formatsInTheFinestUnitThatFitsEightDigits() {
        #expect(GRPCTimeout.format(.milliseconds(250)) == "250000u")
        #expect(GRPCTimeout.format(.nanoseconds(99_999_999)) == "99999999n")
        #expect(GRPCTimeout.format(.seconds(5)) == "5000000u")
        #expect(GRPCTimeout.format(.seconds(200_000)) == "200000S")
        #expect(GRPCTimeout.format(.nanoseconds(-5)) == "0n")
        for amount in [TimeAmount.milliseconds(1234), .seconds(86_400), .nanoseconds(42)] {
            let parsed = GRPCTimeout.parse(GRPCTimeout.format(amount))
            #expect(parsed.map { $0 <= amount && $0 > amount - .milliseconds(1) } == true)
        }
    }
}

@Suite("A client connection's buffer limit")
struct ConnectionBufferLimitTests {
    /// Past the limit the connection's streams stop taking response bytes;
    /// they go on once the queue fell to half of it, not at the first byte
    /// written, so a connection at the limit does not wake its streams per frame.
    @Test func theLimitHoldsAndReleasesAtHalf() {
        let outbox = HTTP2FrameOutbox(batch: FlushBatch(eventLoop: EmbeddedEventLoop()), bufferLimitBytes: 1000)
        var events: [Bool] = []
        outbox.onBufferLimit = { events.append($0) }
        outbox.dataQueued(600)
        #expect(!outbox.isOverBufferLimit)
        outbox.dataQueued(400)
        #expect(outbox.isOverBufferLimit && events == [true])
        outbox.dataWritten(400)
        #expect(outbox.isOverBufferLimit)
        outbox.dataWritten(100)
        #expect(!outbox.isOverBufferLimit && events == [true, false])
    }

    @Test func windowsFollowTheLimit() {
        let defaults = DownstreamLimits(ListenerLimits())
        #expect(defaults.http2ConnectionWindow == 1 << 20)
        #expect(defaults.http2StreamWindow == 256 * 1024)
        let small = DownstreamLimits(ListenerLimits(perConnectionBufferLimitBytes: 16 * 1024))
        #expect(small.http2ConnectionWindow == 65535, "the RFC's initial window is never taken back")
        #expect(small.http2StreamWindow == 16 * 1024)
    }

    @Test(arguments: [(50, 10, 5), (50, 1, 1), (50, 3, 2), (100, 1024, 1024), (1, 1024, 11)])
    func aConnectionsShareIsRoundedUpAndAtLeastOne(percent: Int, maxRequests: Int, share: Int) {
        let limits = DownstreamLimits(ListenerLimits(maxShareOfClusterRequests: percent))
        #expect(limits.clusterShare(ofMaxRequests: maxRequests) == share)
    }
}
