import MeshConfig
import NIOCore
import Testing

@testable import MeshProxy

@Suite struct LocalResponseTests {
    private static func body(_ hint: ExplainHint?) -> String {
        let parts = LocalResponse.parts(
            for: .noRoute, isGRPC: false, requestID: "r1", explainHint: hint, allocator: ByteBufferAllocator())
        return parts.body.map { String(buffer: $0) } ?? ""
    }

    /// The answer names the command that works for this proxy.
    @Test func theAnswerNamesTheCommandThatExplainsTheRequest() {
        #expect(Self.body(.controlPlane).hasSuffix("(request id r1: swiftmesh explain r1)\n"))
        #expect(Self.body(.adminListener(HostPort(host: "127.0.0.1", port: 9901)))
            .hasSuffix("(request id r1: swiftmesh explain r1 --proxy 127.0.0.1:9901)\n"))
        // An admin listener on every address is called on loopback.
        #expect(ExplainHint.adminListener(HostPort(host: "0.0.0.0", port: 9901)).command(for: "r1")
            == "swiftmesh explain r1 --proxy 127.0.0.1:9901")
        #expect(ExplainHint.adminListener(HostPort(host: "::", port: 9901)).command(for: "r1")
            == "swiftmesh explain r1 --proxy [::1]:9901")
        // No admin listener: no records to ask for, only the id.
        #expect(Self.body(nil).hasSuffix("(request id r1)\n"))
        let trailers = LocalResponse.grpcTrailers(for: .forbidden, requestID: "r2", explainHint: .controlPlane)
        #expect(trailers.first(name: "grpc-message")?.hasSuffix("(request id r2: swiftmesh explain r2)") == true)
    }

    /// The live views count a call the proxy refused as failed, whatever
    /// its status; a malformed request is the client's failure.
    @Test func refusedCallsFailMalformedOnesAreTheClients() {
        func finished(_ status: Int, _ error: ProxyError?, refusedOnTheWay: Bool = false) -> FinishedRequest {
            FinishedRequest(
                route: .init(listener: 0, direction: .inbound, cluster: 0, service: 0), reachedEndpoint: false,
                refusedOnTheWay: refusedOnTheWay, endpoint: 0, status: StatusClass(code: status), grpcStatus: FinishedRequest.noGRPCStatus,
                durationNanoseconds: 1, bytesReceived: 0, bytesSent: 0, error: error)
        }
        #expect(finished(403, .forbidden).isFailure && finished(404, .noRoute).isFailure)
        #expect(finished(400, .faultAbort(.httpStatus(400))).isFailure)
        #expect(!finished(400, .badRequest("x")).isFailure && !finished(431, .headersTooLarge).isFailure)
        #expect(!finished(404, nil).isFailure && finished(503, nil).isFailure)
        // The callee's sidecar denied it: a 403 with swiftmesh-proxy-error: forbidden.
        #expect(finished(403, nil, refusedOnTheWay: true).isFailure)
        #expect(ProxyError.reasonFailsTheCall("forbidden") && !ProxyError.reasonFailsTheCall("bad_request"))
    }
}
