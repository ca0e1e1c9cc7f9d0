import MeshConfig
import NIOCore
import NIOHTTP1

/// Everything known about one request, noted as the exchange runs: timings,
/// decisions, the tries and their endpoints, bytes, the answer, and the
/// `flags` of what the proxy did. The one record every consumer reads: the
/// metrics (`finishedRequest`), the access log, the span and `explain`'s
/// `RequestRecord` are all built from it when the request ends. Plain values
/// set at each decision, so that noting costs the data path next to nothing.
struct RequestInfo {
    let requestID: String
    let isGRPC: Bool
    let start: NIODeadline
    var flags = RequestFlags()
    var method: HTTPMethod = .GET
    var path: Substring = ""
    /// The service the listener's routes lead to: what a request answered
    /// before a cluster was picked (denied, no route) is counted for.
    var listenerService: String?
    var authorization: ListenerAuthorization.Decision?
    var routeIndex: Int?
    var cluster: LoopCluster?
    /// The endpoint of the last try.
    var endpoint: EndpointState?
    var tries = 0
    var pickable: (count: Int, of: Int)?
    /// With no endpoint to pick: each of the cluster's endpoints and why balancing left it out.
    var leftOut: [RequestRecord.LeftOutEndpoint] = []
    var breaker: RequestRecord.BreakerUse?
    var faultDelay: TimeAmount?
    var firstTry: RequestRecord.Try?
    var laterTries: [RequestRecord.Try] = []
    /// An endpoint's connection or stream took the request: the instance
    /// counts it too, so an outbound request that never got this far is one
    /// only this proxy saw (`FinishedRequest.reachedEndpoint`).
    var reachedEndpoint = false
    /// The response is a refusal another proxy made (`swiftmesh-proxy-error`
    /// on a 4xx, such as the callee's sidecar denying the call).
    var refusedOnTheWay = false
    /// The status sent to the client; nil until a response head went.
    var status: HTTPResponseStatus?
    /// The response's `grpc-status`; `FinishedRequest.noGRPCStatus` until one is seen.
    var grpcStatus = FinishedRequest.noGRPCStatus
    /// Body bytes received from the client and sent to it.
    var bytesReceived = 0
    var bytesSent = 0
    /// Set when the access log's sample picked this request.
    var accessLogDraft: AccessLogDraft?
    /// Set when tracing is configured, sampled or not: the trace context goes on either way.
    var traced: TracedRequest?

    /// Requests with longer ids are not recorded: nobody explains a 60 KiB id, and the ring stays small.
    static let maxRecordedIDBytes = 256
    static let maxRecordedPathCharacters = 512

    init(requestID: String, isGRPC: Bool, start: NIODeadline) {
        self.requestID = requestID
        self.isGRPC = isGRPC
        self.start = start
    }

    /// The path without its query (queries carry tokens), cut to `maxRecordedPathCharacters`.
    static func recordedPath(of target: String) -> Substring {
        // By bytes, not characters: `?` is ASCII, so its index is a character boundary.
        let path = target[..<(target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)]
        return path.utf8.count <= maxRecordedPathCharacters ? path : path.prefix(maxRecordedPathCharacters)
    }

    // MARK: Noting decisions

    /// The cluster's circuit breaker admitted the request as the `inFlight`th
    /// of `limits.maxRequests` (nil: refused it, at the limit).
    mutating func enteredBreaker(_ inFlight: Int?, limits: CircuitBreakerConfig) {
        breaker = RequestRecord.BreakerUse(
            requests: inFlight ?? limits.maxRequests, maxRequests: limits.maxRequests,
            maxPendingRequests: limits.maxPendingRequests)
    }

    /// A try waited for a connection or stream as the `pending`th of
    /// `maxPendingRequests` (nil: refused, at the limit).
    mutating func waitedForConnection(_ pending: Int?) {
        guard var use = breaker else { return }
        use.pendingRequests = pending ?? use.maxPendingRequests
        breaker = use
    }

    mutating func startTry(_ number: Int, on endpoint: EndpointState, at time: NIODeadline) {
        tries = number
        self.endpoint = endpoint
        let attempt = RequestRecord.Try(endpoint: endpoint.label, startedAt: time - start)
        if firstTry == nil {
            firstTry = attempt
        } else {
            laterTries.append(attempt)
        }
    }

    mutating func attached(at time: NIODeadline) {
        reachedEndpoint = true
        let elapsed = time - start
        updateCurrentTry { $0.attachedAt = elapsed }
    }

    mutating func answered(at time: NIODeadline) {
        let elapsed = time - start
        updateCurrentTry { $0.answeredAt = elapsed }
    }

    mutating func retried(because failure: TryFailure) {
        flags.formUnion([.retried, RequestFlags(failure)])
        updateCurrentTry { $0.retriedBecause = failure.cause }
    }

    /// `grpc-status` from a response's trailers (or a trailers-only head).
    mutating func noteGRPCStatus(_ fields: HTTPHeaders) {
        if let value = fields.first(name: "grpc-status"), let code = UInt8(value) {
            // gRPC has 17 codes; clients read any other as UNKNOWN, and so does the `grpc_status` label.
            grpcStatus = code <= 16 ? code : 2
        }
    }

    private mutating func updateCurrentTry(_ change: (inout RequestRecord.Try) -> Void) {
        if laterTries.isEmpty {
            if firstTry != nil { change(&firstTry!) }
        } else {
            change(&laterTries[laterTries.count - 1])
        }
    }

    // MARK: What the consumers read

    private var recordedGRPCStatus: Int? {
        grpcStatus == FinishedRequest.noGRPCStatus ? nil : Int(grpcStatus)
    }

    /// For the metrics.
    func finishedRequest(
        connection: DownstreamConnectionInfo, serviceLabel: Int, elapsed: TimeAmount, error: ProxyError?
    ) -> FinishedRequest {
        FinishedRequest(
            route: LoopStats.RouteKey(
                listener: connection.listenerLabel, direction: connection.direction,
                cluster: cluster?.statsLabel ?? 0, service: serviceLabel),
            reachedEndpoint: reachedEndpoint, refusedOnTheWay: refusedOnTheWay,
            endpoint: endpoint?.statsLabel ?? 0,
            status: status.map { StatusClass(code: Int($0.code)) } ?? .none,
            grpcStatus: grpcStatus,
            durationNanoseconds: elapsed.nanoseconds,
            bytesReceived: bytesReceived, bytesSent: bytesSent,
            error: error)
    }

    func accessLogEntry(
        _ draft: AccessLogDraft, connection: DownstreamConnectionInfo, elapsed: TimeAmount, error: ProxyError?
    ) -> AccessLogEntry {
        AccessLogEntry(
            startNanoseconds: draft.startNanoseconds, durationNanoseconds: elapsed.nanoseconds,
            listener: connection.listenerName, httpProtocol: connection.isHTTP2 ? "HTTP/2" : "HTTP/1.1",
            method: draft.method, authority: draft.authority, path: draft.path,
            status: status.map { Int($0.code) }, grpcStatus: recordedGRPCStatus,
            cluster: cluster?.config.name, endpoint: endpoint?.label,
            attempts: tries, bytesReceived: bytesReceived, bytesSent: bytesSent,
            caller: connection.authorizedIdentity, traceID: traced?.context.traceID.hex ?? draft.traceID,
            requestID: requestID, proxyError: error?.reason, flags: flags)
    }

    func record(connection: DownstreamConnectionInfo, elapsed: TimeAmount, error: ProxyError?) -> RequestRecord {
        RequestRecord(
            requestID: requestID, startNanoseconds: WallClock.nanoseconds() - elapsed.nanoseconds, duration: elapsed,
            listener: connection.listenerName, direction: connection.direction, method: method,
            path: path, isGRPC: isGRPC, isHTTP2: connection.isHTTP2, caller: connection.authorizedIdentity,
            authorization: authorization, routeIndex: routeIndex, cluster: cluster?.config.name,
            service: cluster?.config.destinationService,
            pickable: pickable, leftOut: leftOut, breaker: breaker, faultDelay: faultDelay, firstTry: firstTry,
            laterTries: laterTries, status: status.map { Int($0.code) }, grpcStatus: recordedGRPCStatus,
            proxyError: error, flags: flags, bytesReceived: bytesReceived, bytesSent: bytesSent)
    }

    func span(_ traced: TracedRequest, connection: DownstreamConnectionInfo, elapsed: TimeAmount, error: ProxyError?) -> ProxySpan {
        ProxySpan(
            context: traced.context, direction: connection.direction,
            startNanoseconds: traced.startNanoseconds, endNanoseconds: traced.startNanoseconds + elapsed.nanoseconds,
            method: traced.method, target: traced.target, authority: traced.authority,
            isHTTP2: connection.isHTTP2, isTLS: connection.isTLS, isGRPC: isGRPC,
            status: status.map { Int($0.code) }, grpcStatus: recordedGRPCStatus,
            listener: connection.listenerName, cluster: cluster?.config.name,
            endpoint: endpoint?.label, attempts: tries, requestID: requestID,
            proxyError: error?.reason, caller: connection.authorizedIdentity, clientIP: connection.clientIP)
    }
}
