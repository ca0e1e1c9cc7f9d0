import NIOCore

/// The cluster's say on a request: its circuit breaker's counts, its retry
/// budget, and the client connection's share of it. The machine asks only
/// when its own rules allow, and keeps what it was given in `held`.
protocol ClusterAdmission {
    /// Takes one of the client connection's `maxShareOfClusterRequests`.
    func takeClusterShare() -> ClusterShareAnswer
    /// Takes one of the breaker's `maxRequests`; false at the limit.
    func startRequest() -> Bool
    /// Takes what one more try of `rules` costs (the breaker's retry slot
    /// unless the request holds one, and retry budget) and returns the
    /// backoff before retry number `retry`; nil when refused.
    func admitRetry(_ rules: RetryRules, retry: Int, holdingRetrySlot: Bool, now: NIODeadline) -> TimeAmount?
}

enum ClusterShareAnswer {
    /// The share cannot bind on this connection (it is not smaller than
    /// the connection's stream limit): nothing is counted.
    case notCounted
    case taken
    case refused
}
