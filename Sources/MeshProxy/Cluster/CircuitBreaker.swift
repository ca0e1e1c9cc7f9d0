import Atomics
import MeshConfig
import MeshUpstream

/// A cluster's circuit breaker: counts of its connections, pending requests
/// and requests in flight, shared by every event loop, against the limits of
/// `clusters[].circuitBreaker`. One atomic add per count change is the whole
/// cost on the request path; there is no lock and no thread hop.
///
/// A count may pass its limit for an instant when loops race at the edge,
/// and then only refuses what would have been refused a moment later, the
/// trade Envoy makes too: exact limits would need a lock.
final class CircuitBreaker: PoolBreaker {
    enum Limit: String, Sendable {
        case maxConnections
        case maxPendingRequests
        case maxRequests
        case maxRetries
    }

    let limits: CircuitBreakerConfig
    private let connections = ManagedAtomic(0)
    private let pendingRequests = ManagedAtomic(0)
    private let requests = ManagedAtomic(0)
    private let retries = ManagedAtomic(0)
    /// Times each limit turned something away, for the metrics.
    private let connectionOverflows = ManagedAtomic(0)
    private let pendingOverflows = ManagedAtomic(0)
    private let requestOverflows = ManagedAtomic(0)
    private let retryOverflows = ManagedAtomic(0)
    /// The cluster's retry budget; it lives here so that it is shared the same way.
    let retryBudget = RetryBudget()

    init(limits: CircuitBreakerConfig) {
        self.limits = limits
    }

    // MARK: Requests in flight

    /// Counts a request about to go to the cluster and answers the requests
    /// in flight, this one included; nil when the cluster is at
    /// `maxRequests` (nothing is counted then).
    func tryStartRequest() -> Int? {
        tryAcquire(requests, limit: limits.maxRequests, overflows: requestOverflows)
    }

    func requestFinished() {
        requests.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: Retries

    /// Counts a request whose failed try is about to be retried; false when
    /// `maxRetries` requests are already being retried.
    func tryStartRetry() -> Bool {
        tryAcquire(retries, limit: limits.maxRetries, overflows: retryOverflows) != nil
    }

    func retryFinished() {
        retries.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: Pending requests

    /// Counts a request that must wait for a connection or a stream and
    /// answers the requests waiting, this one included; nil when
    /// `maxPendingRequests` are already waiting.
    func tryAddPending() -> Int? {
        tryAcquire(pendingRequests, limit: limits.maxPendingRequests, overflows: pendingOverflows)
    }

    func pendingEnded() {
        pendingRequests.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: Connections

    /// Counts a connection about to be opened; false when the cluster is at
    /// `maxConnections`. `force` opens it anyway: a pool with no connection
    /// at all always gets one, or its requests could wait on connections
    /// that other loops hold (Envoy makes the same exception).
    func tryOpenConnection(force: Bool) -> Bool {
        if force {
            connections.wrappingIncrement(ordering: .relaxed)
            return true
        }
        return tryAcquire(connections, limit: limits.maxConnections, overflows: connectionOverflows) != nil
    }

    func connectionClosed() {
        connections.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: Reporting

    struct Snapshot: Sendable, Equatable {
        var connections: Int
        var pendingRequests: Int
        var requests: Int
        var retries: Int
        var connectionOverflows: Int
        var pendingOverflows: Int
        var requestOverflows: Int
        var retryOverflows: Int
        var retryBudgetExhaustions: Int
    }

    func snapshot() -> Snapshot {
        Snapshot(
            connections: connections.load(ordering: .relaxed),
            pendingRequests: pendingRequests.load(ordering: .relaxed),
            requests: requests.load(ordering: .relaxed),
            retries: retries.load(ordering: .relaxed),
            connectionOverflows: connectionOverflows.load(ordering: .relaxed),
            pendingOverflows: pendingOverflows.load(ordering: .relaxed),
            requestOverflows: requestOverflows.load(ordering: .relaxed),
            retryOverflows: retryOverflows.load(ordering: .relaxed),
            retryBudgetExhaustions: retryBudget.exhaustionCount)
    }

    /// The count with this use included, or nil when it was at `limit`.
    private func tryAcquire(_ count: ManagedAtomic<Int>, limit: Int, overflows: ManagedAtomic<Int>) -> Int? {
        let before = count.loadThenWrappingIncrement(ordering: .relaxed)
        if before < limit {
            return before + 1
        }
        count.wrappingDecrement(ordering: .relaxed)
        overflows.wrappingIncrement(ordering: .relaxed)
        return nil
    }
}
