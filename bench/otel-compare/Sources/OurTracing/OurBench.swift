import Logging
import MeshConfig
import NIOCore
import NIOHTTP1

/// SwiftMesh's path for one request's span, as `ProxyExchange` takes it:
/// begin (ids, sampling), the finished-request value, encode into the
/// loop's batch; the exporter's thread posts batches.
/// `@unchecked Sendable`: the harness hands it to its loop and uses it only there.
public final class OurLoopTracer: @unchecked Sendable {
    let exporter: OTLPExporter
    let recorder: SpanRecorder
    var random = FastRandom()

    public init(endpoint: String, loop: EventLoop) {
        exporter = OTLPExporter(TracingConfig(otlpEndpoint: endpoint, serviceName: "bench"), logger: Logger(label: "bench"))
        recorder = SpanRecorder(exporter: exporter, eventLoop: loop)
    }

    public func recordOne(requestID: String) {
        let context = recorder.begin(IncomingTraceContext(HTTPHeaders()), random: &random)
        let start = WallClock.nanoseconds()
        recorder.record(ProxySpan(
            context: context, direction: .outbound, startNanoseconds: start, endNanoseconds: WallClock.nanoseconds(),
            method: "POST", target: "/user.UserService/GetUser", authority: "user:8080",
            isHTTP2: true, isTLS: false, isGRPC: true, status: 200, grpcStatus: 0,
            listener: "outbound", cluster: "user", endpoint: "127.0.0.1:9001", attempts: 1,
            requestID: requestID, proxyError: nil, caller: "spiffe://mesh.local/ns/default/sa/gateway", clientIP: nil))
    }

    public func flush() { recorder.flush() }
}
