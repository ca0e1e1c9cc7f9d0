import Foundation
import Logging
import MeshConfig
import NIOCore
import NIOPosix

/// The proxy process's control side: it binds listeners and the admin
/// server, runs discovery, publishes each config to every event loop, reloads
/// and drains. Nothing here runs per request; the data path lives in the
/// loops' `LoopWorker`s.
public actor ProxyServer {
    private let group: MultiThreadedEventLoopGroup
    private let workers: [LoopWorker]
    private let logger: Logger
    private(set) var config: ProxyConfig
    private var generation = 0
    /// The table `publish` last installed on every loop.
    private var publishedRouting: RoutingTable?
    private let explainedByControlPlane: Bool
    /// The latest endpoints of every cluster, from static config or discovery.
    private var endpoints: [String: [DiscoveredEndpoint]] = [:]
    /// Clusters that finished their first discovery.
    private var discovered: Set<String> = []
    /// What each cluster shares across loops: circuit breaker, endpoint health, outlier detector.
    private var shared: [String: SharedClusterState] = [:]
    /// Each cluster's active health checking (clusters with `healthCheck`).
    private var healthCheckers: [String: HealthChecker] = [:]
    private var dnsTasks: [String: (settings: DNSDiscovery, task: Task<Void, Never>)] = [:]
    private var listeners: [String: BoundListener] = [:]
    /// The TLS contexts of `config`, loaded when it was applied.
    private var tls = TLSContexts()
    private var admin: Channel?
    /// Where access-log lines go; nil when `accessLog` is not configured.
    private var accessLog: AccessLogWriter?
    /// Where spans go; nil when `tracing` is not configured.
    private var tracing: OTLPExporter?
    private var draining = false
    /// Why the proxy must not report ready whatever its own state (a sidecar
    /// without its first configuration yet); nil: nothing holds it.
    private var readinessHold: String?
    /// Whether startup's memory was already returned (once, on first readiness).
    private var startupMemoryTrimmed = false

    /// Reads and checks every TLS file `config` names, as `start` and
    /// `reload` do; the errors carry field paths, like config errors.
    public static func checkTLS(_ config: ProxyConfig) -> ConfigErrors? {
        do {
            _ = try TLSContexts(config)
            return nil
        } catch let error as TLSSetupError {
            return ConfigErrors(issues: [ConfigIssue(path: error.path, message: error.message)])
        } catch {
            return ConfigErrors(issues: [ConfigIssue(path: "", message: "\(error)")])
        }
    }

    /// One event loop per core.
    public static let defaultThreadCount = System.coreCount

    /// `explainedByControlPlane`: a sidecar's proxy, whose requests `swiftmesh explain ID`
    /// finds through the control plane; otherwise its answers name its admin listener.
    public init(
        config: ProxyConfig, threads: Int, logger: Logger, readinessHold: String? = nil,
        explainedByControlPlane: Bool = false
    ) {
        self.config = config
        self.logger = logger
        self.readinessHold = readinessHold
        self.explainedByControlPlane = explainedByControlPlane
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        workers = group.makeIterator().map { LoopWorker(eventLoop: $0, logger: logger) }
    }

    /// Binds everything and starts discovery. Returns once listening.
    public func start() async throws {
        tls = try TLSContexts(config)
        accessLog = try config.accessLog.map(AccessLogWriter.init)
        tracing = config.tracing.map { OTLPExporter($0, logger: logger) }
        startDiscovery(config.clusters)
        await publish()
        for listener in config.listeners {
            try await bindListener(listener)
        }
        if let adminConfig = config.admin {
            admin = try await AdminServer.bind(adminConfig.listen, group: group, proxy: self)
            logger.info("admin listening", metadata: ["address": "\(adminConfig.listen)"])
        }
        trimStartupMemoryOnceReady()
    }

    /// Startup's code and heap are done with once the proxy first becomes
    /// ready; give them back so RSS shows what serving traffic needs.
    private func trimStartupMemoryOnceReady() {
        guard !startupMemoryTrimmed, readiness().ready else { return }
        startupMemoryTrimmed = true
        let dropped = StartupMemoryTrim.run()
        logger.debug("startup memory trimmed", metadata: ["unmappedBytes": "\(dropped)"])
    }

    /// Holds readiness for `reason` instead of the hold before: a sidecar
    /// says which step of its start it waits for.
    public func holdReadiness(_ reason: String) {
        readinessHold = reason
    }

    /// Ends the hold given at init: readiness follows the proxy's own state.
    public func releaseReadinessHold() {
        readinessHold = nil
        trimStartupMemoryOnceReady()
    }

    // MARK: Reload

    /// Applies a new, validated config: new requests use it at once; requests
    /// in flight finish on the config they started with. Listeners that
    /// appeared are bound, listeners that went away drain.
    public func reload(_ newConfig: ProxyConfig) async throws {
        // Before anything changes: a TLS file that cannot be read refuses the reload.
        tls = try TLSContexts(newConfig, previous: tls)
        // So does an access-log file that cannot be opened.
        let oldAccessLog = accessLog
        if newConfig.accessLog != config.accessLog {
            accessLog = try newConfig.accessLog.map(AccessLogWriter.init)
        }
        let oldTracing = tracing
        if newConfig.tracing != config.tracing {
            tracing = newConfig.tracing.map { OTLPExporter($0, logger: logger) }
        }
        let old = config
        config = newConfig
        let oldDNS = dnsTasks
        for (name, entry) in oldDNS where newConfig.cluster(named: name).flatMap(Self.dnsSettings) != entry.settings {
            entry.task.cancel()
            dnsTasks.removeValue(forKey: name)
            discovered.remove(name)
            endpoints.removeValue(forKey: name)
        }
        startDiscovery(newConfig.clusters.filter { dnsTasks[$0.name] == nil })
        let kept = Set(newConfig.clusters.map(\.name))
        for name in endpoints.keys where !kept.contains(name) {
            endpoints.removeValue(forKey: name)
            discovered.remove(name)
        }
        await publish()
        if oldAccessLog !== accessLog {
            // Every loop now logs to the new writer; the old one finishes what it was handed.
            oldAccessLog?.close()
        }
        if let oldTracing, oldTracing !== tracing {
            // Every loop sends to the new exporter; the old one sends what it
            // was handed, without holding up the reload.
            Task { await oldTracing.shutdown() }
        }

        for (name, bound) in listeners where newConfig.listeners.first(where: { $0.name == name })?.listen != bound.config.listen {
            bound.quiescing.initiateShutdown(promise: nil)
            listeners.removeValue(forKey: name)
        }
        for listener in newConfig.listeners where listeners[listener.name] == nil {
            try await bindListener(listener)
        }
        if old.admin != newConfig.admin {
            logger.warning("admin.listen changed; the admin listener moves on the next restart")
        }
        logger.info("configuration reloaded", metadata: ["generation": "\(generation)"])
    }

    // MARK: Drain

    /// Stops accepting, asks every connection to finish (HTTP/2 GOAWAY,
    /// HTTP/1.1 close after the current response), waits for them up to
    /// `drainTimeout`, then stops everything.
    public func drain() async {
        draining = true
        let timeout = config.drainTimeout
        logger.info("draining", metadata: ["drainTimeout": "\(timeout)"])
        for (_, entry) in dnsTasks {
            entry.task.cancel()
        }
        for state in shared.values {
            state.outlierDetector?.stop()
        }
        for checker in healthCheckers.values {
            checker.stop()
        }
        let closed = listeners.values.map { bound -> EventLoopFuture<Void> in
            let promise = bound.channel.eventLoop.makePromise(of: Void.self)
            bound.quiescing.initiateShutdown(promise: promise)
            return promise.futureResult
        }
        let allClosed = EventLoopFuture.andAllComplete(closed, on: group.any())
        // Whichever comes first: every connection closed, or drainTimeout.
        // After that, stopping the loops closes whatever is left.
        let loop = group.any()
        let outcome = loop.makePromise(of: Bool.self)
        let deadline = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { outcome.succeed(false) }
        allClosed.hop(to: loop).whenComplete { _ in
            deadline.cancel()
            outcome.succeed(true)
        }
        let finished = (try? await outcome.futureResult.get()) ?? false
        if !finished {
            logger.warning("drain timeout reached; closing the remaining connections")
            // Close them while the loops run, so every close callback (and the
            // quiescing helpers' promises) completes on a live loop.
            for worker in workers {
                _ = try? await worker.eventLoop.flatSubmit { worker.closeAllConnections() }.get()
            }
            _ = try? await allClosed.get()
        }
        try? await admin?.close()
        // Lines still gathering on the loops go to the writer before it closes.
        for worker in workers {
            _ = try? await worker.eventLoop.submit {
                worker.accessLog?.flush()
                worker.tracing?.flush()
            }.get()
        }
        // Release the quiescing helpers while the loops still run: their
        // deinit resolves a promise, which must not reach a stopped loop.
        listeners.removeAll()
        try? await group.shutdownGracefully()
        accessLog?.close()
        await tracing?.shutdown()
        logger.info("stopped")
    }

    // MARK: Admin queries

    /// 200 once listeners are bound and every cluster finished its first discovery.
    func readiness() -> (ready: Bool, reason: String) {
        if draining {
            return (false, "draining")
        }
        if let readinessHold {
            return (false, readinessHold)
        }
        if listeners.count < config.listeners.count {
            return (false, "listeners are not bound yet")
        }
        let waiting = config.clusters.map(\.name).filter { !discovered.contains($0) }
        if !waiting.isEmpty {
            return (false, "waiting for the first discovery of cluster(s): \(waiting.joined(separator: ", "))")
        }
        return (true, "ready")
    }

    func statsSnapshot() async -> StatsSnapshot {
        var total = StatsSnapshot()
        for worker in workers {
            if let snapshot = try? await worker.eventLoop.submit({ worker.stats.snapshot() }).get() {
                total.merge(snapshot)
            }
        }
        total.circuitBreakers = shared.mapValues { $0.breaker.snapshot() }
        total.outlierDetectors = shared.compactMapValues { $0.outlierDetector?.snapshot() }
        total.healthCheckers = healthCheckers.mapValues { $0.snapshot() }
        total.spans = tracing?.snapshot
        return total
    }

    /// Every request with this id that the proxy finished recently, from
    /// every loop, oldest first, as `/requests/{id}` answers them (JSON); nil when there is none.
    func explain(requestID: String) async -> String? {
        var found: [RequestRecord] = []
        for worker in workers {
            if let records = try? await worker.eventLoop.submit({ RecordsFound(worker.recentRequests.find(requestID)) }).get() {
                found += records.records
            }
        }
        guard !found.isEmpty else { return nil }
        let requests = found.sorted { $0.startNanoseconds < $1.startNanoseconds }.map(\.json)
        let body = try? JSONSerialization.data(
            withJSONObject: ["requestId": requestID, "requests": requests],
            options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return body.map { String(decoding: $0, as: UTF8.self) + "\n" }
    }

    /// What a sidecar reports with its heartbeats: requests, failures and
    /// latencies per direction and service, and the requests each route
    /// matched, since the proxy started.
    public func trafficReport() async -> TrafficReport {
        await statsSnapshot().trafficReport
    }

    func clusterReports() async -> [ClusterReport] {
        var perLoop: [[String: [EndpointReport]]] = []
        for worker in workers {
            if let report = try? await worker.eventLoop.submit({ worker.clusterReport() }).get() {
                perLoop.append(report)
            }
        }
        return ClusterReport.merge(
            clusters: config.clusters, perLoop: perLoop, discovered: discovered,
            breakers: shared.mapValues { $0.breaker.snapshot() })
    }

    // MARK: Internals

    private func bindListener(_ listener: ListenerConfig) async throws {
        let bound = try await ListenerBinder.bind(listener, group: group, workers: workers)
        listeners[listener.name] = bound
        logger.info("listener bound", metadata: ["listener": "\(listener.name)", "address": "\(listener.listen)"])
    }

    /// Installs the current config and endpoints on every loop and waits until all have it.
    private func publish() async {
        generation += 1
        let routing = RoutingTable(config: config, generation: generation, tls: tls, previous: publishedRouting)
        publishedRouting = routing
        let clusters = config.clusters
        let endpoints = self.endpoints
        let shared = sharedStates(for: clusters)
        let accessLog = self.accessLog
        let tracing = self.tracing
        // A request's record is asked for at an admin listener: without one, nothing can explain it.
        let explainHint: ExplainHint? = config.admin.map { admin in
            explainedByControlPlane ? .controlPlane : .adminListener(admin.listen)
        }
        // Queued on every loop before the first wait: discovery news that
        // arrives while this actor waits is queued behind it on each loop,
        // so no loop applies this older endpoint list after newer ones.
        let applied = workers.map { worker in
            worker.eventLoop.submit {
                worker.apply(routing: routing, clusters: clusters, shared: shared, endpoints: endpoints)
                worker.logAccess(to: accessLog)
                worker.trace(to: tracing)
                worker.explainHint = explainHint
            }
        }
        for done in applied {
            try? await done.get()
        }
    }

    /// Each cluster's shared state for a new config. Parts whose settings
    /// stay keep their state (a breaker its counts, a detector its
    /// ejections, endpoint health its verdicts); changed settings start new
    /// ones, which also gives the cluster new loop clusters and connections
    /// (see `LoopCluster.canAdopt`). Detectors and checkers left behind stop.
    private func sharedStates(for clusters: [ClusterConfig]) -> [String: SharedClusterState] {
        var next: [String: SharedClusterState] = [:]
        var checkers: [String: HealthChecker] = [:]
        let homeLoop = workers[0].eventLoop
        for cluster in clusters {
            let name = cluster.name
            let old = shared[name]
            let breaker = old.flatMap { $0.breaker.limits == cluster.settings.circuitBreaker ? $0.breaker : nil }
                ?? CircuitBreaker(limits: cluster.settings.circuitBreaker)
            var state = SharedClusterState(breaker: breaker, upstreamTLS: tls.clusters[name])
            if cluster.settings.outlierDetection != nil || cluster.settings.healthCheck != nil {
                let checksActively = cluster.settings.healthCheck != nil
                let registry = old?.healthRegistry.flatMap { $0.checksActively == checksActively ? $0 : nil }
                    ?? EndpointHealthRegistry(checksActively: checksActively)
                state.healthRegistry = registry
                if let settings = cluster.settings.outlierDetection {
                    state.outlierDetector = old?.outlierDetector.flatMap {
                        $0.config == settings && old?.healthRegistry === registry ? $0 : nil
                    } ?? OutlierDetector(config: settings, registry: registry, homeLoop: homeLoop, onChange: rebalancer(name))
                }
                if let settings = cluster.settings.healthCheck {
                    checkers[name] = healthCheckers[name].flatMap {
                        $0.config == settings && $0.protocolKind == cluster.protocolKind && $0.tls === state.upstreamTLS
                            && old?.healthRegistry === registry ? $0 : nil
                    } ?? HealthChecker(
                        config: settings, protocolKind: cluster.protocolKind, tls: state.upstreamTLS, registry: registry,
                        homeLoop: homeLoop,
                        onChange: rebalancer(name))
                }
            }
            next[name] = state
        }
        for (name, old) in shared where old.outlierDetector != nil && next[name]?.outlierDetector !== old.outlierDetector {
            old.outlierDetector?.stop()
        }
        for (name, old) in healthCheckers where checkers[name] !== old {
            old.stop()
        }
        shared = next
        healthCheckers = checkers
        for name in next.keys {
            // A reload may have changed a static endpoint list.
            endpointsChangedForHealth(cluster: name)
        }
        return next
    }

    /// Tells a cluster's endpoint health, outlier detector and health checker the current endpoints.
    private func endpointsChangedForHealth(cluster name: String) {
        let found = endpoints[name] ?? []
        let labels = found.map(\.label)
        shared[name]?.healthRegistry?.keep(only: labels)
        shared[name]?.outlierDetector?.endpointsChanged(labels)
        healthCheckers[name]?.endpointsChanged(found)
    }

    /// Has every loop rebuild the balancing of cluster `name` (an endpoint's health changed).
    private func rebalancer(_ name: String) -> @Sendable () -> Void {
        let workers = self.workers
        return {
            for worker in workers {
                worker.eventLoop.execute { worker.rebalance(cluster: name) }
            }
        }
    }

    private static func dnsSettings(_ cluster: ClusterConfig) -> DNSDiscovery? {
        if case .dns(let settings) = cluster.discovery { return settings }
        return nil
    }

    private func startDiscovery(_ clusters: [ClusterConfig]) {
        for cluster in clusters {
            switch cluster.discovery {
            case .staticEndpoints(let list):
                endpoints[cluster.name] = EndpointResolution.endpoints(list)
                discovered.insert(cluster.name)
            case .dns(let settings):
                let loop = DNSDiscoveryLoop(cluster: cluster.name, settings: settings, group: group, logger: logger)
                let name = cluster.name
                // The task holds the server until cancelled (on reload or drain).
                let task = Task {
                    await loop.run { found in
                        await self.endpointsDiscovered(cluster: name, settings: settings, found)
                    }
                }
                dnsTasks[cluster.name] = (settings, task)
            }
        }
    }

    private func endpointsDiscovered(cluster name: String, settings: DNSDiscovery, _ found: [DiscoveredEndpoint]) {
        // A lookup that finished after a reload replaced this cluster's discovery is stale.
        guard dnsTasks[name]?.settings == settings else { return }
        discovered.insert(name)
        trimStartupMemoryOnceReady()
        guard endpoints[name] != found else { return }
        endpoints[name] = found
        endpointsChangedForHealth(cluster: name)
        for worker in workers {
            worker.eventLoop.execute {
                worker.updateEndpoints(cluster: name, found)
            }
        }
    }
}
