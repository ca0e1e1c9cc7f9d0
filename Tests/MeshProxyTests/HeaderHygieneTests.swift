import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite struct HeaderHygieneTests {
    @Test func removesHopByHopAndWhatConnectionNames() {
        var headers = HTTPHeaders([
            ("connection", "keep-alive, x-secret"), ("keep-alive", "timeout=5"), ("x-secret", "1"),
            ("transfer-encoding", "chunked"), ("upgrade", "h2c"), ("proxy-connection", "x"), ("te", "gzip"),
            ("x-kept", "yes"),
        ])
        HeaderHygiene.removeHopByHop(&headers)
        #expect(headers.map(\.name) == ["x-kept"])
    }

    @Test func keepsTrailersTE() {
        var headers = HTTPHeaders([("te", "trailers")])
        HeaderHygiene.removeHopByHop(&headers)
        #expect(headers["te"] == ["trailers"])
    }

    @Test func forwardingHeaders() {
        var headers = HTTPHeaders([("x-forwarded-for", "10.0.0.1"), ("x-forwarded-proto", "https")])
        HeaderHygiene.addForwardingHeaders(&headers, clientIP: "127.0.0.1", scheme: "http")
        #expect(headers["x-forwarded-for"] == ["10.0.0.1, 127.0.0.1"])
        #expect(headers["x-forwarded-proto"] == ["http"])
    }

    @Test func limits() {
        let many = HTTPHeaders((0..<5).map { ("h\($0)", "v") })
        #expect(HeaderHygiene.checkLimits(many, maxBytes: 1000, maxCount: 4) == .tooManyHeaders)
        #expect(HeaderHygiene.checkLimits(many, maxBytes: 1000, maxCount: 5) == nil)
        let big = HTTPHeaders([("x", String(repeating: "a", count: 100))])
        #expect(HeaderHygiene.checkLimits(big, maxBytes: 100, maxCount: 10) == .headersTooLarge)
    }

    @Test func requestIDsAreUUIDShapedAndDistinct() {
        var random = FastRandom(seed: 11)
        let first = RequestID.generate(using: &random)
        let second = RequestID.generate(using: &random)
        #expect(first != second)
        #expect(first.count == 36)
        let groups = first.split(separator: "-").map(\.count)
        #expect(groups == [8, 4, 4, 4, 12])
        #expect(first.split(separator: "-")[2].first == "4")
    }

    @Test func grpcMessageIsPercentEncoded() {
        #expect(LocalResponse.percentEncodedGRPCMessage("a b%c\n") == "a b%25c%0A")
    }

    @Test func everyErrorMapsToHTTPAndGRPC() {
        #expect(ProxyError.noRoute.httpStatus == .notFound)
        #expect(ProxyError.noRoute.grpcStatus == .unimplemented)
        #expect(ProxyError.noEndpoints.httpStatus == .serviceUnavailable)
        #expect(ProxyError.connectFailure.grpcStatus == .unavailable)
        #expect(ProxyError.timeout.httpStatus == .gatewayTimeout)
        #expect(ProxyError.timeout.grpcStatus == .deadlineExceeded)
        #expect(ProxyError.headersTooLarge.httpStatus == .requestHeaderFieldsTooLarge)
        #expect(ProxyError.badRequest("x").closesConnection)
    }
}
