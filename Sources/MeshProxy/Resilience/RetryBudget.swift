import Atomics
import MeshConfig

/// A cluster's retry budget: the requests and retries sent to it over the
/// last `windowSeconds`, shared by every event loop, so retries stay within
/// `ratio` of requests plus `minPerSecond` × `windowSeconds` (the budget of
/// Linkerd and Finagle). A healthy cluster never notices it; when every
/// endpoint fails, retries add at most `ratio` to the load instead of
/// multiplying it by the number of attempts.
///
/// Counts live in one-second slots of a ring; a slot is zeroed when a new
/// second claims it. Two loops racing on a slot's turnover may lose a count,
/// which moves the budget by one request at most: exactness would need a lock.
final class RetryBudget: Sendable {
    static let windowSeconds = 10

    private let slotSecond: [ManagedAtomic<Int>]
    private let requests: [ManagedAtomic<Int>]
    private let retries: [ManagedAtomic<Int>]
    /// Retries refused because the budget was spent, for the metrics.
    private let exhaustions = ManagedAtomic(0)

    init() {
        slotSecond = (0..<Self.windowSeconds).map { _ in ManagedAtomic(-1) }
        requests = (0..<Self.windowSeconds).map { _ in ManagedAtomic(0) }
        retries = (0..<Self.windowSeconds).map { _ in ManagedAtomic(0) }
    }

    /// A request to the cluster from a route that retries: it adds `ratio` to the budget.
    func recordRequest(second: Int) {
        requests[slot(for: second)].wrappingIncrement(ordering: .relaxed)
    }

    /// Spends one retry when the window's retries are below the budget;
    /// false (counted as an exhaustion) otherwise.
    func tryWithdraw(_ config: RetryBudgetConfig, second: Int) -> Bool {
        let current = slot(for: second)
        while true {
            let currentRetries = retries[current].load(ordering: .relaxed)
            var requestCount = 0
            var retryCount = 0
            for index in 0..<Self.windowSeconds where slotSecond[index].load(ordering: .relaxed) > second - Self.windowSeconds {
                requestCount += requests[index].load(ordering: .relaxed)
                retryCount += index == current ? currentRetries : retries[index].load(ordering: .relaxed)
            }
            let allowed = Double(requestCount) * config.ratio + Double(config.minPerSecond * Self.windowSeconds)
            guard Double(retryCount) < allowed else {
                exhaustions.wrappingIncrement(ordering: .relaxed)
                return false
            }
            // The retry is spent only if no other loop spent one since the
            // count, so two loops cannot both take the budget's last retry.
            if retries[current].compareExchange(
                expected: currentRetries, desired: currentRetries + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    var exhaustionCount: Int { exhaustions.load(ordering: .relaxed) }

    /// The slot that counts `second`, zeroed first if it still holds an older second.
    private func slot(for second: Int) -> Int {
        let index = second % Self.windowSeconds
        let held = slotSecond[index].load(ordering: .relaxed)
        if held < second,
           slotSecond[index].compareExchange(expected: held, desired: second, ordering: .relaxed).exchanged {
            requests[index].store(0, ordering: .relaxed)
            retries[index].store(0, ordering: .relaxed)
        }
        return index
    }
}
