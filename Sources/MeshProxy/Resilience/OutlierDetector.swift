import Atomics
import MeshConfig
import NIOCore

/// A cluster's outlier detection, shared by every event loop. The data path
/// reports each try's outcome with one relaxed atomic operation (two with
/// success-rate detection); the decisions (eject, return, decay) run on one
/// home event loop, reached only when an endpoint's consecutive errors hit
/// the threshold and once per interval. Every change is announced through
/// `onChange`, on which each loop rebuilds its balancing without the ejected
/// endpoints, so picking an endpoint reads no shared state at all.
///
/// `@unchecked Sendable`: `state`, `sweepTask` and `stopped` are touched on
/// `homeLoop` only; the rest is immutable, atomic or locked (`registry`).
final class OutlierDetector: @unchecked Sendable {
    let config: OutlierDetectionConfig
    private let homeLoop: EventLoop
    private let onChange: @Sendable () -> Void
    private var state: OutlierState
    private var sweepTask: RepeatedTask?
    /// Replaced or removed by a reload: failures still reported by requests
    /// of the old config eject nothing.
    private var stopped = false
    private let registry: EndpointHealthRegistry
    /// Ejections so far, by what caused them, for the metrics.
    private let consecutiveErrorEjections = ManagedAtomic(0)
    private let successRateEjections = ManagedAtomic(0)

    init(
        config: OutlierDetectionConfig, registry: EndpointHealthRegistry, homeLoop: EventLoop,
        onChange: @escaping @Sendable () -> Void
    ) {
        self.config = config
        self.registry = registry
        self.homeLoop = homeLoop
        self.onChange = onChange
        state = OutlierState(config: config)
        let interval = TimeAmount.nanoseconds(config.interval.nanoseconds)
        homeLoop.execute { [self] in
            // Ejections and counts of a detector this one replaced end with it.
            Self.clear(registry)
            onChange()
            sweepTask = homeLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                self?.sweep()
            }
        }
    }

    /// The detector left the config: no more decisions, and its ejections
    /// end (a detector replacing it starts from none as well).
    func stop() {
        homeLoop.execute { [self] in
            stopped = true
            sweepTask?.cancel()
            sweepTask = nil
            Self.clear(registry)
            onChange()
        }
    }

    private static func clear(_ registry: EndpointHealthRegistry) {
        for health in registry.all {
            health.publish(ejected: false, ejections: 0)
            health.consecutiveErrors.store(0, ordering: .relaxed)
            health.successes.store(0, ordering: .relaxed)
            health.failures.store(0, ordering: .relaxed)
        }
    }

    /// Discovery reported a new endpoint set (labels of every endpoint).
    func endpointsChanged(_ labels: [String]) {
        homeLoop.execute { [self] in
            state.setEndpoints(labels)
        }
    }

    // MARK: Outcomes, from any loop

    func recordSuccess(_ health: EndpointHealth) {
        if health.consecutiveErrors.load(ordering: .relaxed) != 0 {
            health.consecutiveErrors.store(0, ordering: .relaxed)
        }
        if config.successRate != nil {
            health.successes.wrappingIncrement(ordering: .relaxed)
        }
    }

    func recordFailure(_ health: EndpointHealth) {
        if config.successRate != nil {
            health.failures.wrappingIncrement(ordering: .relaxed)
        }
        if health.consecutiveErrors.wrappingIncrementThenLoad(ordering: .relaxed) == config.consecutiveErrors {
            homeLoop.execute { [self] in
                ejectForConsecutiveErrors(health)
            }
        }
    }

    // MARK: Decisions, on the home loop

    private func ejectForConsecutiveErrors(_ health: EndpointHealth) {
        guard !stopped else { return }
        // Counting starts over whether or not the ejection is allowed, so
        // the next run of failures asks again.
        health.consecutiveErrors.store(0, ordering: .relaxed)
        guard state.eject(health.label, now: .now()) else { return }
        consecutiveErrorEjections.wrappingIncrement(ordering: .relaxed)
        publish(health.label)
        onChange()
    }

    private func sweep() {
        guard !stopped else { return }
        var outcomes: [String: (successes: Int, failures: Int)] = [:]
        let endpoints = registry.all
        if config.successRate != nil {
            for health in endpoints {
                outcomes[health.label] = (health.successes.exchange(0, ordering: .relaxed),
                                          health.failures.exchange(0, ordering: .relaxed))
            }
        }
        let changes = state.sweep(now: .now(), outcomes: outcomes)
        successRateEjections.wrappingIncrement(by: changes.ejected.count, ordering: .relaxed)
        // Every endpoint: multipliers may have decayed, and a flag a replaced
        // detector cleared late is set right again.
        var ejectionsMoved = false
        for health in endpoints where publish(health.label) {
            ejectionsMoved = true
        }
        for label in changes.returned {
            registry.existingHealth(for: label)?.consecutiveErrors.store(0, ordering: .relaxed)
        }
        if ejectionsMoved {
            onChange()
        }
    }

    /// Writes the state's view of `label` to its shared health; true when
    /// whether it is ejected changed.
    @discardableResult
    private func publish(_ label: String) -> Bool {
        guard let health = registry.existingHealth(for: label) else { return false }
        let endpoint = state.endpoints[label]
        let ejected = endpoint?.ejectedUntil != nil
        let moved = health.isEjected != ejected
        health.publish(ejected: ejected, ejections: endpoint?.ejections ?? 0)
        return moved
    }

    // MARK: Reporting

    struct Snapshot: Sendable, Equatable {
        var consecutiveErrorEjections: Int
        var successRateEjections: Int
        var ejected: Int
    }

    func snapshot() -> Snapshot {
        let ejected = registry.all.count { $0.isEjected }
        return Snapshot(
            consecutiveErrorEjections: consecutiveErrorEjections.load(ordering: .relaxed),
            successRateEjections: successRateEjections.load(ordering: .relaxed),
            ejected: ejected)
    }
}
