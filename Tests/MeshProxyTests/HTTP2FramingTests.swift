import NIOHPACK
import NIOHTTP1
import Testing

@testable import MeshProxy

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

@Suite struct HTTP2HeaderMappingTests {
    @Test func requestHeadTakesPseudoHeadersAndAuthorityAsHost() throws {
        let block = HPACKHeaders([
            (":method", "POST"), (":scheme", "http"), (":path", "/user.UserService/Get"),
            (":authority", "user:50051"), ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        let head = try #require(HTTP2HeaderMapping.requestHead(block))
        #expect(head.method == .POST)
        #expect(head.uri == "/user.UserService/Get")
        #expect(head.headers["host"] == ["user:50051"])
        #expect(head.headers["content-type"] == ["application/grpc"])
        #expect(!head.headers.contains { $0.name.hasPrefix(":") })
    }

    @Test func requestWithoutPathIsRejected() {
        #expect(HTTP2HeaderMapping.requestHead(HPACKHeaders([(":method", "GET")])) == nil)
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

    @Test func responseStatusAndFields() {
        let block = HPACKHeaders([(":status", "503"), ("grpc-status", "14")])
        #expect(HTTP2HeaderMapping.responseStatus(block) == .serviceUnavailable)
        #expect(HTTP2HeaderMapping.regularFields(block).map(\.name) == ["grpc-status"])
        #expect(HTTP2HeaderMapping.responseStatus(HPACKHeaders([(":status", "x")])) == nil)
        let out = HTTP2HeaderMapping.responseBlock(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain")]))
        #expect(out.map(\.name) == [":status", "content-type"])
    }
}
