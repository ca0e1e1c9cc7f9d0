/// One endpoint's probe results against a health check's thresholds, as a
/// plain value: `HealthChecker` keeps one per endpoint.
struct ActiveCheckTally: Equatable {
    private(set) var verdict: EndpointHealth.ActiveCheck
    private var passesInRow = 0
    private var failuresInRow = 0

    /// A new endpoint starts `pending`; one whose checker was replaced keeps its verdict.
    init(verdict: EndpointHealth.ActiveCheck = .pending) {
        self.verdict = verdict
    }

    /// Adds one probe's result; returns the new verdict when it changed. A
    /// new endpoint is decided by its first probe (Envoy's rule, so that a
    /// new instance takes traffic as soon as it answers); after that it
    /// takes `unhealthyThreshold` failures, or `healthyThreshold` passes, in a row.
    mutating func record(passed: Bool, healthyThreshold: Int, unhealthyThreshold: Int) -> EndpointHealth.ActiveCheck? {
        if passed {
            passesInRow += 1
            failuresInRow = 0
        } else {
            failuresInRow += 1
            passesInRow = 0
        }
        let next: EndpointHealth.ActiveCheck = switch verdict {
        case .pending: passed ? .passing : .failing
        case .passing: failuresInRow >= unhealthyThreshold ? .failing : .passing
        case .failing: passesInRow >= healthyThreshold ? .passing : .failing
        }
        guard next != verdict else { return nil }
        verdict = next
        return next
    }
}
