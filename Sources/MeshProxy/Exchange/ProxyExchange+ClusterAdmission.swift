import NIOCore

/// The cluster's say on the request, asked by the machine: the client's
/// share of the cluster, the circuit breaker's request and retry slots, and
/// the retry budget. What it grants, the machine keeps in `held`; `finish`
/// gives it back.
extension ProxyExchange: ClusterAdmission {
    func takeClusterShare() -> ClusterShareAnswer {
        guard let cluster else { return .notCounted }
        // Counted only where it can bind: a connection never has more
        // requests in flight than streams (one, over HTTP/1.1).
        let limits = downstream.connection.limits
        let maxRequests = cluster.breaker.limits.maxRequests
        guard limits.maxShareOfClusterRequests < 100,
              limits.clusterShare(ofMaxRequests: maxRequests) < limits.maxConcurrentStreams else { return .notCounted }
        return downstream.takeClusterShare(cluster.statsLabel, maxRequests: maxRequests) ? .taken : .refused
    }

    func startRequest() -> Bool {
        guard let breaker = cluster?.breaker else { return false }
        let inFlight = breaker.tryStartRequest()
        info.enteredBreaker(inFlight, limits: breaker.limits)
        return inFlight != nil
    }

    /// One more try needs the cluster's retry slot (held until the request
    /// ends) and its retry budget.
    func admitRetry(_ rules: RetryRules, retry: Int, holdingRetrySlot: Bool, now: NIODeadline) -> TimeAmount? {
        guard let breaker = cluster?.breaker else { return nil }
        if !holdingRetrySlot {
            guard breaker.tryStartRetry() else { return nil }
        }
        guard breaker.retryBudget.tryWithdraw(rules.budget, second: Self.second(of: now)) else {
            if !holdingRetrySlot {
                breaker.retryFinished()
            }
            return nil
        }
        return rules.backoff(retry: retry, random: &worker.random)
    }

    /// Gives back what the request held of its cluster, once, when it ends.
    func releaseHeld() {
        let held = machine.releaseHeld()
        guard !held.isEmpty, let cluster else { return }
        if held.contains(.request) {
            cluster.breaker.requestFinished()
        }
        if held.contains(.clusterShare) {
            downstream.releaseClusterShare(cluster.statsLabel)
        }
        if held.contains(.retry) {
            cluster.breaker.retryFinished()
        }
    }

    /// Whole seconds of the monotonic clock, the retry budget's time slots.
    static func second(of time: NIODeadline) -> Int {
        Int(time.uptimeNanoseconds / 1_000_000_000)
    }
}
