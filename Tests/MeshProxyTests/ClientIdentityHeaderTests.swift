import MeshConfig
import NIOHTTP1
import Testing
@testable import MeshProxy

/// `swiftmesh-client-identity` is the proxy's word on who the client is:
/// set from a verified certificate only, and never taken from a client.
@Suite("Client identity header")
struct ClientIdentityHeaderTests {
    private let route = CompiledRoute(
        RouteConfig(match: RouteMatch(), action: .cluster("c")), index: 0, clusterIndex: ["c": 0])

    private func upstream(_ fields: [(String, String)], isTLS: Bool, identity: String?) -> HTTPHeaders {
        HeaderHygiene.upstreamRequestFields(
            HTTPHeaders(fields), route: route, requestID: "rid", clientIP: "127.0.0.1", isTLS: isTLS,
            clientIdentity: identity, defaultHost: "endpoint:80", answersExpect: true
        ).fields
    }

    @Test func setFromTheCertificateOnly() {
        let forged = [("Swiftmesh-Client-Identity", "spiffe://swiftmesh.local/service/admin")]
        #expect(upstream(forged, isTLS: false, identity: nil)["swiftmesh-client-identity"] == [])
        #expect(upstream(forged, isTLS: true, identity: "spiffe://swiftmesh.local/service/gateway")["swiftmesh-client-identity"]
            == ["spiffe://swiftmesh.local/service/gateway"])
    }

    @Test func forwardedProtoFollowsTheConnection() {
        #expect(upstream([], isTLS: true, identity: nil)["x-forwarded-proto"] == ["https"])
        #expect(upstream([], isTLS: false, identity: nil)["x-forwarded-proto"] == ["http"])
    }

    @Test func removedFromTrailersToo() {
        let trailers = HTTPHeaders([("grpc-status", "0"), ("swiftmesh-client-identity", "forged")])
        #expect(HeaderHygiene.forwardedTrailers(trailers, fromClient: true).map(\.name) == ["grpc-status"])
    }
}
