import Logging
import MeshConfig
import MeshLoopIO
import NIOCore

/// Everything the data path of one event loop uses: the routing table, the
/// clusters with their balancers and connection pools, a random source and
/// the counters. A request never leaves the loop that accepted its
/// connection, so none of this needs a lock.
///
/// `@unchecked Sendable`: the control path only hands a worker to
/// `eventLoop.execute`/`submit` closures; every property is read and written on
/// `eventLoop` alone (checked by `assertInEventLoop` in debug builds).
final class LoopWorker: @unchecked Sendable {
    let eventLoop: EventLoop
    let stats = LoopStats()
    /// For what the data path must tell the operator of: authorization denials.
    let logger: Logger
    var denialLogLimit = LogRateLimit(perSecond: 10)
    var random = FastRandom()
    /// Access logging on this loop; nil when the config has no `accessLog`.
    private(set) var accessLog: AccessLogRecorder?
    /// The last requests this loop finished, for `/requests/{id}`.
    let recentRequests = RecentRequests()
    /// Tracing on this loop; nil when the config has no `tracing`.
    private(set) var tracing: SpanRecorder?
    /// HTTP/2 connections flush once per loop iteration through this.
    let flushBatch: FlushBatch
    private(set) var routing: RoutingTable
    /// Aligned with `routing.clusterNames`.
    private(set) var clusters: [LoopCluster] = []
    private var clustersByName: [String: LoopCluster] = [:]

    /// The loop's cluster of that name in the config it has now.
    func cluster(named name: String) -> LoopCluster? {
        clustersByName[name]
    }
    /// Client connections open on this loop, so a drain that runs out of
    /// time can close them while the loop still runs.
    private var openConnections: [ObjectIdentifier: Channel] = [:]

    /// Logs finished requests to `writer` from now on (nil: stops logging).
    /// Lines of this iteration already recorded go to the previous writer.
    func logAccess(to writer: AccessLogWriter?) {
        guard accessLog?.writer !== writer else { return }
        accessLog?.flush()
        accessLog = writer.map { AccessLogRecorder(writer: $0, eventLoop: eventLoop) }
    }

    /// Sends spans to `exporter` from now on (nil: stops tracing). Spans
    /// already recorded go to the previous exporter.
    func trace(to exporter: OTLPExporter?) {
        guard tracing?.exporter !== exporter else { return }
        tracing?.flush()
        tracing = exporter.map { SpanRecorder(exporter: $0, eventLoop: eventLoop) }
    }

    /// What the proxy's own answers name to explain a request; nil: nothing can (no admin listener).
    var explainHint: ExplainHint?

    init(eventLoop: EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.logger = logger
        flushBatch = FlushBatch(eventLoop: eventLoop)
        routing = RoutingTable(config: ProxyConfig(listeners: [], clusters: []), generation: 0)
    }

    /// Installs a new config. Clusters that keep their shape keep their
    /// endpoints and warm connections; the others are rebuilt with the
    /// endpoints discovery last reported; removed clusters drain.
    func apply(
        routing: RoutingTable, clusters configs: [ClusterConfig], shared: [String: SharedClusterState],
        endpoints: [String: [DiscoveredEndpoint]]
    ) {
        eventLoop.assertInEventLoop()
        var previous = clustersByName
        var next: [LoopCluster] = []
        for config in configs {
            let shared = shared[config.name] ?? SharedClusterState(breaker: CircuitBreaker(limits: config.settings.circuitBreaker))
            if let kept = previous[config.name], kept.canAdopt(config, shared: shared) {
                previous.removeValue(forKey: config.name)
                // Endpoints or weights may have changed; unchanged endpoints keep their connections.
                kept.updateEndpoints(endpoints[config.name] ?? [], stats: stats, random: &random)
                next.append(kept)
                continue
            }
            let cluster = LoopCluster(
                config: config, shared: shared, eventLoop: eventLoop, flushBatch: flushBatch, stats: stats,
                random: &random)
            cluster.updateEndpoints(endpoints[config.name] ?? [], stats: stats, random: &random)
            next.append(cluster)
        }
        // Clusters replaced or removed: requests in flight hold their own references and finish.
        for old in previous.values {
            old.retire(random: &random)
        }
        self.routing = routing
        stats.routesPublished(routing)
        clusters = next
        clustersByName = Dictionary(uniqueKeysWithValues: next.map { ($0.config.name, $0) })
    }

    func connectionOpened(_ channel: Channel) {
        openConnections[ObjectIdentifier(channel)] = channel
    }

    func connectionClosed(_ channel: Channel) {
        openConnections.removeValue(forKey: ObjectIdentifier(channel))
    }

    /// Closes every client connection still open; completes when all are closed.
    func closeAllConnections() -> EventLoopFuture<Void> {
        eventLoop.assertInEventLoop()
        let closing = openConnections.values.map { channel in
            channel.close().recover { _ in }
        }
        return EventLoopFuture.andAllComplete(closing, on: eventLoop)
    }

    func updateEndpoints(cluster name: String, _ endpoints: [DiscoveredEndpoint]) {
        eventLoop.assertInEventLoop()
        clustersByName[name]?.updateEndpoints(endpoints, stats: stats, random: &random)
    }

    /// An endpoint of `name` was ejected, came back, or changed health.
    func rebalance(cluster name: String) {
        eventLoop.assertInEventLoop()
        clustersByName[name]?.rebalance(random: &random)
    }

    /// This loop's view of every cluster, for `/clusters`.
    func clusterReport() -> [String: [EndpointReport]] {
        eventLoop.assertInEventLoop()
        var report: [String: [EndpointReport]] = [:]
        for cluster in clusters {
            report[cluster.config.name] = cluster.endpoints.map {
                EndpointReport(
                    address: $0.label, weight: $0.weight, inFlight: $0.inFlight,
                    activeCheck: $0.health?.activeCheck ?? .passing, ejected: $0.health?.isEjected ?? false,
                    ejections: $0.health?.ejections ?? 0)
            }
        }
        return report
    }
}

/// One endpoint in `/clusters`, summed over loops by the admin server.
struct EndpointReport: Sendable {
    var address: String
    var weight: Int
    var inFlight: Int
    /// Shared state, the same on every loop.
    var activeCheck: EndpointHealth.ActiveCheck
    var ejected: Bool
    var ejections: Int
}
