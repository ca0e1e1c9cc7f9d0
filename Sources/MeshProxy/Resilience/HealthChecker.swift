import Atomics
import MeshConfig
import NIOCore

/// A cluster's active health checking. Every endpoint is probed from one
/// home event loop, `interval` after its previous probe ended, so probes of
/// one endpoint never overlap; each verdict change is published to the
/// endpoint's shared `EndpointHealth` and announced through `onChange`, on
/// which every loop rebuilds its balancing. Nothing here runs per request.
///
/// `@unchecked Sendable`: `probes` and `stopped` are touched on `homeLoop`
/// only; the rest is immutable or atomic.
final class HealthChecker: @unchecked Sendable {
    let config: HealthCheckConfig
    let protocolKind: UpstreamProtocol
    /// The cluster's TLS, which probes use too; nil: plaintext.
    let tls: UpstreamTLS?
    private let registry: EndpointHealthRegistry
    private let homeLoop: EventLoop
    private let onChange: @Sendable () -> Void

    private struct Probed {
        var endpoint: DiscoveredEndpoint
        var tally = ActiveCheckTally()
        /// Tells this endpoint's probe chain from one of an earlier time it was discovered.
        var chain: Int
        var next: Scheduled<Void>?
    }

    private var probes: [String: Probed] = [:]
    private var chains = 0
    private var stopped = false
    /// Probe results so far, for the metrics.
    private let passedCount = ManagedAtomic(0)
    private let failedCount = ManagedAtomic(0)

    init(
        config: HealthCheckConfig, protocolKind: UpstreamProtocol, tls: UpstreamTLS? = nil, registry: EndpointHealthRegistry,
        homeLoop: EventLoop, onChange: @escaping @Sendable () -> Void
    ) {
        self.config = config
        self.protocolKind = protocolKind
        self.tls = tls
        self.registry = registry
        self.homeLoop = homeLoop
        self.onChange = onChange
    }

    /// Discovery reported the cluster's endpoints: new ones are probed at
    /// once, gone ones no more.
    func endpointsChanged(_ endpoints: [DiscoveredEndpoint]) {
        homeLoop.execute { [self] in
            guard !stopped else { return }
            var gone = probes
            for endpoint in endpoints {
                if gone.removeValue(forKey: endpoint.label) != nil {
                    probes[endpoint.label]?.endpoint = endpoint
                    continue
                }
                chains += 1
                // Made here, so a probe that ends before any loop asked for it
                // has somewhere to put its verdict; a checker replacing another
                // goes on from the verdict it finds.
                let health = registry.health(for: endpoint.label)
                probes[endpoint.label] = Probed(endpoint: endpoint, tally: ActiveCheckTally(verdict: health.activeCheck), chain: chains)
                probe(endpoint.label, chain: chains)
            }
            for (label, probed) in gone {
                probed.next?.cancel()
                probes.removeValue(forKey: label)
            }
        }
    }

    /// The checker left the config: no more probes.
    func stop() {
        homeLoop.execute { [self] in
            stopped = true
            for probed in probes.values {
                probed.next?.cancel()
            }
            probes.removeAll()
        }
    }

    private func probe(_ label: String, chain: Int) {
        guard !stopped, let probed = probes[label], probed.chain == chain else { return }
        HealthProbe.run(
            config.probe, address: probed.endpoint.address, authority: label, protocolKind: protocolKind, tls: tls,
            timeout: .nanoseconds(config.timeout.nanoseconds), on: homeLoop
        ).whenSuccess { [self] passed in
            concluded(label, chain: chain, passed: passed)
        }
    }

    private func concluded(_ label: String, chain: Int, passed: Bool) {
        guard !stopped, var probed = probes[label], probed.chain == chain else { return }
        (passed ? passedCount : failedCount).wrappingIncrement(ordering: .relaxed)
        let change = probed.tally.record(
            passed: passed, healthyThreshold: config.healthyThreshold, unhealthyThreshold: config.unhealthyThreshold)
        probed.next = homeLoop.scheduleTask(in: .nanoseconds(config.interval.nanoseconds)) { [self] in
            probe(label, chain: chain)
        }
        probes[label] = probed
        if let change {
            // Gone from the registry: the endpoint left, and its verdict with it.
            registry.existingHealth(for: label)?.publish(activeCheck: change)
            onChange()
        }
    }

    // MARK: Reporting

    struct Snapshot: Sendable, Equatable {
        var passed: Int
        var failed: Int
        /// Endpoints failing their checks or not checked yet.
        var unhealthy: Int
    }

    func snapshot() -> Snapshot {
        Snapshot(
            passed: passedCount.load(ordering: .relaxed), failed: failedCount.load(ordering: .relaxed),
            unhealthy: registry.all.count { $0.activeCheck != .passing })
    }
}
