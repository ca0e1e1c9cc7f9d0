import MeshConfig
import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite struct HeaderHygieneTests {
    private func route(add: [(String, String)] = [], remove: [String] = []) -> CompiledRoute {
        let config = RouteConfig(
            match: RouteMatch(pathPrefix: "/"), action: .cluster("c"),
            requestHeadersToAdd: add.map { HeaderValue(name: $0.0, value: $0.1) }, requestHeadersToRemove: remove)
        return CompiledRoute(config, index: 0, clusterIndex: ["c": 0])
    }

    private func upstream(
        _ fields: [(String, String)], route: CompiledRoute? = nil, clientIP: String? = "127.0.0.1",
        answersExpect: Bool = true
    ) -> (fields: HTTPHeaders, expectsContinue: Bool) {
        HeaderHygiene.upstreamRequestFields(
            HTTPHeaders(fields), route: route ?? self.route(), requestID: "rid", clientIP: clientIP,
            defaultHost: "endpoint:80", answersExpect: answersExpect)
    }

    @Test func removesHopByHopAndWhatConnectionNames() {
        let (fields, _) = upstream([
            ("Connection", "keep-alive, X-Secret"), ("keep-alive", "timeout=5"), ("x-secret", "1"),
            ("transfer-encoding", "chunked"), ("upgrade", "h2c"), ("proxy-connection", "x"), ("te", "gzip"),
            ("Host", "svc"), ("x-kept", "yes"),
        ])
        #expect(fields.map(\.name) == ["Host", "x-kept", "x-request-id", "x-forwarded-for", "x-forwarded-proto"])
        let response = HeaderHygiene.downstreamResponseFields(
            HTTPHeaders([("connection", "close"), ("x-a", "1"), ("X-Request-Id", "theirs")]), requestID: "rid")
        #expect(response.map(\.name) == ["x-a", "x-request-id"])
        #expect(response["x-request-id"] == ["rid"])
    }

    /// RFC 9110 7.6.1: a field `Connection` names is dropped, even one the
    /// proxy would otherwise have used; Host then falls back to the endpoint.
    @Test func fieldsNamedByConnectionAreDroppedEvenWhenTheProxyUsesThem() {
        let (fields, _) = upstream([
            ("Connection", "Host, X-Forwarded-For"), ("Host", "svc"), ("X-Forwarded-For", "10.0.0.1"),
        ])
        #expect(fields["host"] == ["endpoint:80"])
        #expect(fields["x-forwarded-for"] == ["127.0.0.1"])
    }

    @Test func keepsTrailersTE() {
        #expect(upstream([("te", "trailers")]).fields["te"] == ["trailers"])
        #expect(upstream([("te", "Trailers;q=1, gzip")]).fields["te"] == ["trailers"])
        // ASCII only: the dotted capital I lowercases to an i with a dot.
        #expect(upstream([("te", "tra\u{130}lers")]).fields["te"] == [])
    }

    /// RFC 9113 section 8.2.3: cookies an HTTP/2 client split travel on as one.
    @Test func splitCookiesAreJoined() {
        let (fields, _) = upstream([("cookie", "a=1"), ("x", "y"), ("Cookie", "b=2"), ("cookie", "c=3")])
        #expect(fields["cookie"] == ["a=1; b=2; c=3"])
        #expect(fields.map(\.name).prefix(2) == ["cookie", "x"])
    }

    @Test func equalContentLengthsGoOnAsOne() {
        #expect(upstream([("content-length", "5"), ("Content-Length", "5")]).fields["content-length"] == ["5"])
    }

    /// RFC 9110 section 6.5.1: framing, routing and connection fields never travel in trailers.
    @Test func trailersLoseFieldsTheyMayNotCarry() {
        let trailers = HTTPHeaders([
            ("grpc-status", "0"), ("Content-Length", "9"), ("host", "evil"), ("transfer-encoding", "chunked"),
            ("connection", "close"), ("trailer", "x"), ("content-type", "text/plain"), ("x-checksum", "abc"),
            ("swiftmesh-client-identity", "spiffe://forged"),
        ])
        let fromClient = HeaderHygiene.forwardedTrailers(trailers, fromClient: true)
        #expect(fromClient.map(\.name) == ["grpc-status", "x-checksum"])
        let fromEndpoint = HeaderHygiene.forwardedTrailers(trailers, fromClient: false)
        #expect(fromEndpoint.map(\.name) == ["grpc-status", "x-checksum", "swiftmesh-client-identity"])
        let grpc = HTTPHeaders([("grpc-status", "0"), ("grpc-message", "ok")])
        #expect(HeaderHygiene.forwardedTrailers(grpc, fromClient: false) == grpc)
    }

    @Test func forwardingHeadersAndRequestID() {
        let (fields, _) = upstream([
            ("x-forwarded-for", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2"), ("x-forwarded-proto", "https"),
            ("x-request-id", "client-chosen"),
        ])
        #expect(fields["x-forwarded-for"] == ["10.0.0.1, 10.0.0.2, 127.0.0.1"])
        #expect(fields["x-forwarded-proto"] == ["http"])
        #expect(fields["x-request-id"] == ["rid"])
        #expect(fields["host"] == ["endpoint:80"])
        // Without a client address (a Unix socket) the client's list goes on as it was.
        #expect(upstream([("x-forwarded-for", "10.0.0.1")], clientIP: nil).fields["x-forwarded-for"] == ["10.0.0.1"])
    }

    @Test func routeEditsReplaceAndRemove() {
        let edits = route(add: [("x-env", "prod"), ("host", "override")], remove: ["X-Debug"])
        let (fields, _) = upstream([("x-env", "dev"), ("x-debug", "1"), ("Host", "svc"), ("x-other", "2")], route: edits)
        #expect(fields["x-env"] == ["prod"])
        #expect(fields["x-debug"].isEmpty)
        #expect(fields["host"] == ["override"])
        #expect(fields["x-other"] == ["2"])
    }

    @Test func paddedValuesAreTrimmed() {
        #expect(upstream([("x-a", " v \t")]).fields["x-a"] == ["v"])
    }

    @Test func expectContinueIsAnsweredByTheProxy() {
        let answered = upstream([("Expect", "100-Continue")])
        #expect(answered.expectsContinue)
        #expect(answered.fields["expect"].isEmpty)
        // HTTP/1.0: the expectation is ignored and goes on to the endpoint.
        // A route that removes the field does not leave the client waiting for its 100.
        let removed = upstream([("Expect", "100-continue")], route: route(remove: ["expect"]))
        #expect(removed.expectsContinue && removed.fields["expect"].isEmpty)
        let ignored = upstream([("expect", "100-continue")], answersExpect: false)
        #expect(!ignored.expectsContinue)
        #expect(ignored.fields["expect"] == ["100-continue"])
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
