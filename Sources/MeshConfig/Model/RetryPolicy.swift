/// When and how a route sends a failed request again. A retry goes to
/// another endpoint than the failed try whenever the cluster has one, after
/// a jittered exponential backoff, and only while nothing of the response
/// has reached the client.
public struct RetryPolicy: Sendable, Equatable {
    /// What makes a try worth repeating (config spellings as Envoy's `retry_on`).
    public enum Condition: String, Sendable, Equatable, CaseIterable {
        /// No connection to the endpoint could be opened.
        case connectFailure = "connect-failure"
        /// The connection or stream failed before a response head came, or
        /// the try outlived `perTryTimeout`.
        case reset
        /// The endpoint refused the HTTP/2 stream unprocessed (REFUSED_STREAM,
        /// or above a GOAWAY's last stream ID).
        case refusedStream = "refused-stream"
        /// Status 502, 503 or 504, and every failure above.
        case gatewayError = "gateway-error"
        /// Any 5xx status, and every failure above.
        case serverError = "5xx"
        /// A status listed in `retriableStatusCodes`.
        case retriableStatusCodes = "retriable-status-codes"
        /// gRPC statuses, read from a trailers-only response.
        case cancelled
        case deadlineExceeded = "deadline-exceeded"
        case resourceExhausted = "resource-exhausted"
        case unavailable
        case `internal`
    }

    /// Retries after the first try.
    public var attempts: Int
    public var conditions: [Condition]
    /// With `retriable-status-codes`: the HTTP statuses retried.
    public var retriableStatusCodes: [Int]
    /// How long one try may wait for its response head; nil: only the route timeout applies.
    public var perTryTimeout: MeshDuration?
    public var backoff: RetryBackoff
    public var budget: RetryBudgetConfig
    /// Request bodies up to this many bytes are kept to be sent again; a
    /// request with a longer body is not retried.
    public var bufferLimitBytes: Int

    public static let defaultAttempts = 1
    public static let defaultBufferLimitBytes = 64 * 1024

    public init(
        attempts: Int = RetryPolicy.defaultAttempts,
        conditions: [Condition],
        retriableStatusCodes: [Int] = [],
        perTryTimeout: MeshDuration? = nil,
        backoff: RetryBackoff = RetryBackoff(),
        budget: RetryBudgetConfig = RetryBudgetConfig(),
        bufferLimitBytes: Int = RetryPolicy.defaultBufferLimitBytes
    ) {
        self.attempts = attempts
        self.conditions = conditions
        self.retriableStatusCodes = retriableStatusCodes
        self.perTryTimeout = perTryTimeout
        self.backoff = backoff
        self.budget = budget
        self.bufferLimitBytes = bufferLimitBytes
    }
}

/// The wait before retry n is drawn uniformly from zero to
/// min(`max`, `base` × 2^(n-1)) ("full jitter"), so callers that failed
/// together do not come back together.
public struct RetryBackoff: Sendable, Equatable {
    public var base: MeshDuration
    public var max: MeshDuration

    public static let defaultBase = MeshDuration.milliseconds(25)
    public static let defaultMax = MeshDuration.milliseconds(250)

    public init(base: MeshDuration = RetryBackoff.defaultBase, max: MeshDuration = RetryBackoff.defaultMax) {
        self.base = base
        self.max = max
    }
}

/// Retries to a cluster stay within `ratio` of its requests plus
/// `minPerSecond`, both counted over the last ten seconds, so that retries
/// cannot multiply the load on a cluster that is already failing.
public struct RetryBudgetConfig: Sendable, Equatable {
    public var ratio: Double
    public var minPerSecond: Int

    public static let defaultRatio = 0.2
    public static let defaultMinPerSecond = 10

    public init(ratio: Double = RetryBudgetConfig.defaultRatio, minPerSecond: Int = RetryBudgetConfig.defaultMinPerSecond) {
        self.ratio = ratio
        self.minPerSecond = minPerSecond
    }
}
