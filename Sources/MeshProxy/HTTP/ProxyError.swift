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
    /// The request could not be parsed, or had a shape the proxy refuses (request smuggling).
    case badRequest(String)
    /// The request head exceeded the listener's byte limit.
    case headersTooLarge
    /// The request head had more header fields than the listener allows.
    case tooManyHeaders

    /// The `swiftmesh-proxy-error` header value.
    var reason: String {
        switch self {
        case .noRoute: "no_route"
        case .noEndpoints: "no_endpoints"
        case .connectFailure: "connect_failure"
        case .upstreamReset: "upstream_reset"
        case .timeout: "timeout"
        case .badRequest: "bad_request"
        case .headersTooLarge: "headers_too_large"
        case .tooManyHeaders: "too_many_headers"
        }
    }

    var httpStatus: HTTPResponseStatus {
        switch self {
        case .noRoute: .notFound
        case .noEndpoints: .serviceUnavailable
        case .connectFailure, .upstreamReset: .badGateway
        case .timeout: .gatewayTimeout
        case .badRequest: .badRequest
        case .headersTooLarge, .tooManyHeaders: .requestHeaderFieldsTooLarge
        }
    }

    /// The status a gRPC server would have answered with.
    var grpcStatus: GRPCStatusCode {
        switch self {
        case .noRoute: .unimplemented
        case .noEndpoints, .connectFailure, .upstreamReset: .unavailable
        case .timeout: .deadlineExceeded
        case .badRequest, .headersTooLarge, .tooManyHeaders: .internalError
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
        case .badRequest(let detail): "malformed request: \(detail)"
        case .headersTooLarge: "request headers exceed the listener's maxRequestHeaderBytes"
        case .tooManyHeaders: "request has more header fields than the listener's maxRequestHeaders"
        }
    }

    /// Whether the downstream connection must close after the answer (HTTP/1.1):
    /// after a parse error the byte stream can no longer be trusted.
    var closesConnection: Bool {
        switch self {
        case .badRequest, .headersTooLarge, .tooManyHeaders: true
        default: false
        }
    }
}

/// The gRPC status codes the proxy produces.
enum GRPCStatusCode: Int, Sendable {
    case deadlineExceeded = 4
    case unimplemented = 12
    case internalError = 13
    case unavailable = 14
}
