import Atomics

/// One endpoint's health as every event loop sees it: the outcome counts the
/// data path adds to, the ejection the cluster's `OutlierDetector` decides,
/// and the verdict of its `HealthChecker`'s probes. Shared by the endpoint's
/// `EndpointState` on every loop, through the cluster's `EndpointHealthRegistry`.
///
/// Loops read `isEjected` and `activeCheck` only when told to rebuild their
/// balancing (through `EventLoop.execute`, which orders the write before the
/// read), so relaxed atomics suffice.
final class EndpointHealth: Sendable {
    /// What active health checking says of the endpoint.
    enum ActiveCheck: UInt8, Sendable {
        /// Passing, or not checked at all.
        case passing = 0
        /// New, not probed yet: no requests until the first probe passes.
        case pending = 1
        case failing = 2
    }

    let label: String
    /// Failures since the last success.
    let consecutiveErrors = ManagedAtomic(0)
    /// Outcomes since the last interval, for success-rate detection.
    let successes = ManagedAtomic(0)
    let failures = ManagedAtomic(0)
    private let ejected = ManagedAtomic(false)
    private let ejectionCount = ManagedAtomic(0)
    private let activeCheckState: ManagedAtomic<UInt8>

    init(label: String, activeCheck: ActiveCheck) {
        self.label = label
        activeCheckState = ManagedAtomic(activeCheck.rawValue)
    }

    var activeCheck: ActiveCheck { ActiveCheck(rawValue: activeCheckState.load(ordering: .relaxed)) ?? .passing }

    /// Written by the health checker only.
    func publish(activeCheck: ActiveCheck) {
        activeCheckState.store(activeCheck.rawValue, ordering: .relaxed)
    }

    /// Whether balancing may pick the endpoint: passing its checks and not ejected.
    var isUsable: Bool { activeCheck == .passing && !isEjected }

    var isEjected: Bool { ejected.load(ordering: .relaxed) }
    /// Times the endpoint was ejected, as the ejection time multiplier stands.
    var ejections: Int { ejectionCount.load(ordering: .relaxed) }

    /// Written by the outlier detector only.
    func publish(ejected: Bool, ejections: Int) {
        self.ejected.store(ejected, ordering: .relaxed)
        ejectionCount.store(ejections, ordering: .relaxed)
    }
}
