import Atomics

/// One endpoint's health as every event loop sees it: the outcome counts the
/// data path adds to, and the ejection the cluster's `OutlierDetector`
/// decides. Shared by the endpoint's `EndpointState` on every loop.
///
/// Loops read `isEjected` only when the detector tells them to rebuild
/// their balancing (through `EventLoop.execute`, which orders the write
/// before the read), so relaxed atomics suffice.
final class EndpointHealth: Sendable {
    let label: String
    /// Failures since the last success.
    let consecutiveErrors = ManagedAtomic(0)
    /// Outcomes since the last interval, for success-rate detection.
    let successes = ManagedAtomic(0)
    let failures = ManagedAtomic(0)
    private let ejected = ManagedAtomic(false)
    private let ejectionCount = ManagedAtomic(0)

    init(label: String) {
        self.label = label
    }

    var isEjected: Bool { ejected.load(ordering: .relaxed) }
    /// Times the endpoint was ejected, as the ejection time multiplier stands.
    var ejections: Int { ejectionCount.load(ordering: .relaxed) }

    /// Written by the outlier detector only.
    func publish(ejected: Bool, ejections: Int) {
        self.ejected.store(ejected, ordering: .relaxed)
        ejectionCount.store(ejections, ordering: .relaxed)
    }
}
