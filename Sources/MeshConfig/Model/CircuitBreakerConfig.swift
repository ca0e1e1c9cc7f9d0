/// Limits on what a cluster's endpoints are asked to handle at once, across
/// every event loop of the proxy. A request over a limit is answered at
/// once (503, gRPC UNAVAILABLE, `swiftmesh-proxy-error: overflow`) instead
/// of piling onto endpoints that are already saturated.
public struct CircuitBreakerConfig: Sendable, Equatable {
    /// Connections open or opening to the cluster's endpoints. Past it,
    /// requests wait for a connection to free up (as pending requests).
    public var maxConnections: Int
    /// Requests waiting for a connection or an HTTP/2 stream.
    public var maxPendingRequests: Int
    /// Requests in flight to the cluster.
    public var maxRequests: Int
    /// Requests being retried to the cluster at once (a request holds one
    /// from its first retry until it ends). Past it, a failed try is not
    /// retried. The default is as high as the others: the retry budget
    /// already keeps retries in proportion to requests, and a low fixed cap
    /// (Envoy's 3) fails most of the requests that were in flight on an
    /// instance when it dies.
    public var maxRetries: Int

    /// Envoy's defaults, so a cluster moved over behaves the same.
    public static let defaultLimit = 1024

    public init(
        maxConnections: Int = CircuitBreakerConfig.defaultLimit,
        maxPendingRequests: Int = CircuitBreakerConfig.defaultLimit,
        maxRequests: Int = CircuitBreakerConfig.defaultLimit,
        maxRetries: Int = CircuitBreakerConfig.defaultLimit
    ) {
        self.maxConnections = maxConnections
        self.maxPendingRequests = maxPendingRequests
        self.maxRequests = maxRequests
        self.maxRetries = maxRetries
    }
}
