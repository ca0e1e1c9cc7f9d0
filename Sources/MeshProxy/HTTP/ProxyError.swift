import MeshConfig
import NIOHTTP1

/// Every decision the proxy makes on its own about a request, mapped in one
/// place to what the caller sees: the HTTP status, the gRPC status for gRPC
/// callers, and the `swiftmesh-proxy-error` reason (also the metric and log label).
enum ProxyError: Error, Equatable, Sendable {
    /// No route of the listener matched the request.
    case noRoute
    /// The chosen cluster has no endpoints to send the request to.
    case noEndpoints
    /// A connection to the chosen endpoint could not be established.
    case connectFailure
    /// The upstream connection or stream closed or reset before the response completed.
    case upstreamReset
    /// The route's timeout elapsed before the response completed.
    case timeout
    /// The last try got no response head within the route's `retries.perTryTimeout`.
    case perTryTimeout
    /// The request could not be parsed, or had a shape the proxy refuses (request smuggling).
    case badRequest(String)
    /// The request head exceeded the listener's byte limit.
    case headersTooLarge
    /// The request head had more header fields than the listener allows.
    case tooManyHeaders
    /// The route's fault injection answered the request on purpose.
    case faultAbort(FaultAbort.Answer)
    /// The cluster's circuit breaker turned the request away at this limit.
    case overflow(CircuitBreaker.Limit)
    /// The listener's authorization denied the caller this request.
    case forbidden
    /// The request head did not arrive whole within the listener's `limits.requestHeadersTimeout`.
    case requestHeadersTimeout
    /// No bytes went either way for the listener's `limits.streamIdleTimeout`;
    /// `clientSending`: the client had not finished its request.
    case streamIdleTimeout(clientSending: Bool)
    /// The client's connection holds its `limits.maxShareOfClusterRequests` of the cluster.
    case clusterShare

    /// Whether the call counts as failed in the live traffic views: every
    /// answer of the proxy's own but the ones to a malformed request, which
    /// are the client's failure, not the called service's.
    var failsTheCall: Bool {
        Self.reasonFailsTheCall(reason)
    }

    /// `failsTheCall` of the error with this `swiftmesh-proxy-error` reason,
    /// as another proxy's answer carries it.
    static func reasonFailsTheCall(_ reason: String) -> Bool {
        !["bad_request", "headers_too_large", "too_many_headers", "request_headers_timeout"].contains(reason)
    }

    /// The `swiftmesh-proxy-error` header value.
    var reason: String {
        switch self {
        case .noRoute: "no_route"
        case .noEndpoints: "no_endpoints"
        case .connectFailure: "connect_failure"
        case .upstreamReset: "upstream_reset"
        case .timeout: "timeout"
        case .perTryTimeout: "per_try_timeout"
        case .badRequest: "bad_request"
        case .headersTooLarge: "headers_too_large"
        case .tooManyHeaders: "too_many_headers"
        case .faultAbort: "fault_abort"
        case .overflow: "overflow"
        case .forbidden: "forbidden"
        case .requestHeadersTimeout: "request_headers_timeout"
        case .streamIdleTimeout: "stream_idle_timeout"
        case .clusterShare: "cluster_share"
        }
    }

    var httpStatus: HTTPResponseStatus {
        switch self {
        case .noRoute: .notFound
        case .forbidden: .forbidden
        case .noEndpoints, .overflow: .serviceUnavailable
        case .connectFailure, .upstreamReset: .badGateway
        case .timeout, .perTryTimeout: .gatewayTimeout
        case .badRequest: .badRequest
        case .headersTooLarge, .tooManyHeaders: .requestHeaderFieldsTooLarge
        case .faultAbort(.httpStatus(let code)): HTTPResponseStatus(statusCode: code)
        case .faultAbort(.grpcStatus(let code)): (GRPCStatusCode(rawValue: code) ?? .unknown).httpStatus
        case .requestHeadersTimeout, .streamIdleTimeout(clientSending: true): .requestTimeout
        case .streamIdleTimeout(clientSending: false): .gatewayTimeout
        case .clusterShare: .tooManyRequests
        }
    }

    /// The status a gRPC server would have answered with.
    var grpcStatus: GRPCStatusCode {
        switch self {
        case .noRoute: .unimplemented
        case .forbidden: .permissionDenied
        case .noEndpoints, .connectFailure, .upstreamReset, .overflow: .unavailable
        case .timeout, .perTryTimeout: .deadlineExceeded
        case .badRequest, .headersTooLarge, .tooManyHeaders: .internalError
        case .faultAbort(.grpcStatus(let code)): GRPCStatusCode(rawValue: code) ?? .unknown
        case .faultAbort(.httpStatus(let code)): GRPCStatusCode(httpStatus: code)
        case .requestHeadersTimeout, .streamIdleTimeout: .deadlineExceeded
        case .clusterShare: .resourceExhausted
        }
    }

    /// A sentence for humans, sent as the body (HTTP) or `grpc-message` (gRPC).
    var message: String {
        switch self {
        case .noRoute: "no route matched the request"
        case .noEndpoints: "the cluster has no endpoints"
        case .connectFailure: "could not connect to an endpoint"
        case .upstreamReset: "the endpoint closed the connection before responding"
        case .timeout: "the route timeout elapsed before the response completed"
        case .perTryTimeout: "no response head within the route's retries.perTryTimeout, and no retry left"
        case .badRequest(let detail): "malformed request: \(detail)"
        case .headersTooLarge: "request headers exceed the listener's maxRequestHeaderBytes"
        case .tooManyHeaders: "request has more header fields than the listener's maxRequestHeaders"
        case .faultAbort: "aborted by the route's fault injection"
        case .overflow(let limit): "the cluster's circuit breaker is open: circuitBreaker.\(limit.rawValue) reached"
        case .forbidden: "the listener's authorization does not allow this caller this request"
        case .requestHeadersTimeout: "the request head did not arrive within the listener's limits.requestHeadersTimeout"
        case .streamIdleTimeout(clientSending: true):
            "the rest of the request did not come within the listener's limits.streamIdleTimeout"
        case .streamIdleTimeout(clientSending: false):
            "the endpoint sent nothing within the listener's limits.streamIdleTimeout"
        case .clusterShare:
            "this connection holds its share of the cluster's circuitBreaker.maxRequests (the listener's limits.maxShareOfClusterRequests)"
        }
    }

    /// Whether the downstream connection must close after the answer (HTTP/1.1):
    /// after a parse error the byte stream can no longer be trusted.
    var closesConnection: Bool {
        switch self {
        case .badRequest, .headersTooLarge, .tooManyHeaders, .requestHeadersTimeout: true
        // Where the rest of the request would end is unknown.
        case .streamIdleTimeout(clientSending: true): true
        default: false
        }
    }
}

/// gRPC status codes (grpc/doc/statuscodes.md).
enum GRPCStatusCode: Int, Sendable {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case internalError = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    /// Statuses that say the server, not the call, is in trouble: they count
    /// against an endpoint in outlier detection, as 5xx statuses do.
    var meansServerFailure: Bool {
        switch self {
        case .unknown, .deadlineExceeded, .internalError, .unavailable, .dataLoss: true
        default: false
        }
    }

    /// What a gRPC client concludes from an HTTP status without a gRPC
    /// status (grpc/doc/http-grpc-status-mapping.md).
    init(httpStatus code: Int) {
        switch code {
        case 400: self = .internalError
        case 401: self = .unauthenticated
        case 403: self = .permissionDenied
        case 404: self = .unimplemented
        case 429, 502, 503, 504: self = .unavailable
        default: self = .unknown
        }
    }

    /// The HTTP status that says the same to a caller that does not speak
    /// gRPC (the mapping of google.rpc.Code).
    var httpStatus: HTTPResponseStatus {
        switch self {
        case .ok: .ok
        case .cancelled: HTTPResponseStatus(statusCode: 499, reasonPhrase: "Client Closed Request")
        case .unknown, .internalError, .dataLoss: .internalServerError
        case .invalidArgument, .failedPrecondition, .outOfRange: .badRequest
        case .deadlineExceeded: .gatewayTimeout
        case .notFound: .notFound
        case .alreadyExists, .aborted: .conflict
        case .permissionDenied: .forbidden
        case .resourceExhausted: .tooManyRequests
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        case .unauthenticated: .unauthorized
        }
    }
}
