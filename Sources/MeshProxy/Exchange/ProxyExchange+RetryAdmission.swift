import NIOCore

/// The cluster's say on a retry the route's rules and the request allow.
extension ProxyExchange: RetryAdmission {
    /// One more try needs the cluster's retry slot (held until the request
    /// ends) and its retry budget.
    func admitRetry(_ rules: RetryRules, retry: Int, now: NIODeadline) -> TimeAmount? {
        guard let breaker = cluster?.breaker else { return nil }
        let takesSlot = !holdsRetrySlot
        if takesSlot {
            guard breaker.tryStartRetry() else { return nil }
        }
        guard breaker.retryBudget.tryWithdraw(rules.budget, second: Self.second(of: now)) else {
            if takesSlot {
                breaker.retryFinished()
            }
            return nil
        }
        holdsRetrySlot = true
        return rules.backoff(retry: retry, random: &worker.random)
    }

    /// Whole seconds of the monotonic clock, the retry budget's time slots.
    static func second(of time: NIODeadline) -> Int {
        Int(time.uptimeNanoseconds / 1_000_000_000)
    }
}
