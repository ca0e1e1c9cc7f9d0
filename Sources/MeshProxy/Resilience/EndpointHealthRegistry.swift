import NIOConcurrencyHelpers

/// Every endpoint's shared `EndpointHealth` for one cluster, by label. Each
/// event loop asks for an endpoint's health when it builds its state for
/// it; the outlier detector and the health checker find them here too. The
/// lock is taken when endpoints change and on the detectors' schedules,
/// never per request.
final class EndpointHealthRegistry: Sendable {
    /// With active health checks, new endpoints wait for their first probe.
    let checksActively: Bool
    private let byLabel = NIOLockedValueBox<[String: EndpointHealth]>([:])

    init(checksActively: Bool) {
        self.checksActively = checksActively
    }

    /// The shared health of the endpoint `label`, made on first request.
    func health(for label: String) -> EndpointHealth {
        byLabel.withLockedValue { byLabel in
            if let known = byLabel[label] { return known }
            let health = EndpointHealth(label: label, activeCheck: checksActively ? .pending : .passing)
            byLabel[label] = health
            return health
        }
    }

    func existingHealth(for label: String) -> EndpointHealth? {
        byLabel.withLockedValue { $0[label] }
    }

    var all: [EndpointHealth] {
        byLabel.withLockedValue { Array($0.values) }
    }

    /// Forgets endpoints that left the cluster.
    func keep(only labels: [String]) {
        let kept = Set(labels)
        byLabel.withLockedValue { byLabel in
            byLabel = byLabel.filter { kept.contains($0.key) }
        }
    }
}
