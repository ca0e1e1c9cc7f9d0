import MeshConfig
import MeshHTTP1
import NIOCore
import NIOHTTP1

/// The routes of every listener, compiled from one config. Immutable and
/// shared by all event loops; a reload publishes a new table and requests in
/// flight keep the one they started with.
struct RoutingTable: Sendable {
    /// Increases with every published table, so connections can cache their listener's entry.
    let generation: Int
    let listeners: [String: CompiledListener]
    /// Cluster names by index; routes refer to clusters by these indices.
    let clusterNames: [String]

    /// `previous`: the table this one replaces, whose listeners' `routesVersion` carry over where their routes stay.
    init(config: ProxyConfig, generation: Int, tls: TLSContexts = TLSContexts(), previous: RoutingTable? = nil) {
        self.generation = generation
        clusterNames = config.clusters.map(\.name)
        var indexByName: [String: Int] = [:]
        for (index, name) in clusterNames.enumerated() {
            indexByName[name] = index
        }
        var serviceByCluster: [String: String] = [:]
        for cluster in config.clusters {
            serviceByCluster[cluster.name] = cluster.destinationService
        }
        var listeners: [String: CompiledListener] = [:]
        for listener in config.listeners {
            let before = previous?.listeners[listener.name]
            listeners[listener.name] = CompiledListener(
                listener, clusterIndex: indexByName, serviceByCluster: serviceByCluster, tls: tls.listeners[listener.name],
                routesVersion: before.flatMap { $0.routeConfigs == listener.routes ? $0.routesVersion : nil } ?? generation)
        }
        self.listeners = listeners
    }
}

/// A class, immutable: every request reads its listener's, and handing a
/// reference around costs one retain where a struct of this size costs a
/// copy and a retain per field.
final class CompiledListener: Sendable {
    let name: String
    let limits: ListenerLimits
    /// `limits` as the listener's connections use them.
    let downstreamLimits: DownstreamLimits
    let idleTimeout: TimeAmount
    let routes: [CompiledRoute]
    /// How new connections start TLS; nil: plaintext. Read when a
    /// connection is accepted, so a reload (a renewed certificate) applies to
    /// new connections while open ones keep theirs.
    let tls: ListenerTLS?
    /// Decided before routing; nil: every request goes on.
    let authorization: ListenerAuthorization?
    /// The `direction` label of the listener's metrics.
    let direction: TrafficDirection
    /// Reads paths before routing and authorization; nil: paths are taken as sent.
    let pathNormalizer: PathNormalizer?
    /// The one service every route of the listener leads to (a sidecar's
    /// listeners each have one), or nil. A request the proxy answers before
    /// it picks a cluster (denied, no route) is counted for this service.
    let destinationService: String?
    /// The routes as configured, to tell whether a new config changed them.
    let routeConfigs: [RouteConfig]
    /// Changes whenever the listener's routes change (the table generation
    /// that changed them), so that what a route index matched is never
    /// counted for the route that later takes its place.
    let routesVersion: Int

    init(
        _ config: ListenerConfig, clusterIndex: [String: Int], serviceByCluster: [String: String] = [:],
        tls: ListenerTLS? = nil, routesVersion: Int = 0
    ) {
        name = config.name
        routeConfigs = config.routes
        self.routesVersion = routesVersion
        direction = config.direction
        pathNormalizer = config.pathNormalization.enabled ? PathNormalizer(config: config.pathNormalization) : nil
        self.tls = tls
        authorization = config.authorization.map(ListenerAuthorization.init)
        limits = config.limits
        downstreamLimits = DownstreamLimits(config.limits)
        idleTimeout = .nanoseconds(config.idleTimeout.nanoseconds)
        routes = config.routes.enumerated().map { CompiledRoute($1, index: $0, clusterIndex: clusterIndex) }
        let services = Set(config.routes.flatMap(\.action.clusterNames).map { serviceByCluster[$0] ?? $0 })
        destinationService = services.count == 1 ? services.first : nil
    }

    /// The first route whose conditions hold; `path` is the request
    /// target's (`RouteMatcher.path(ofTarget:)`).
    func route(method: HTTPMethod, path: Substring, headers: HTTPHeaders) -> CompiledRoute? {
        routes.first { $0.matcher.matches(method: method, path: path, headers: headers) }
    }
}

struct CompiledRoute: Sendable {
    /// The route's position in its listener, for logs and errors.
    let index: Int
    let matcher: RouteMatcher
    let destination: Destination
    let timeout: TimeAmount?
    let headersToAdd: [HeaderValue]
    /// Names the route removes or replaces: a client's fields of these names
    /// do not reach the endpoint.
    private let editedHeaderNames: [String]
    let fault: FaultConfig?
    let retry: RetryRules?

    enum Destination: Sendable {
        case cluster(Int)
        /// Clusters with cumulative weights; a draw in 0..<total picks the first entry whose bound exceeds it.
        case split([(cluster: Int, upperBound: Int)], total: Int)
    }

    init(_ config: RouteConfig, index: Int, clusterIndex: [String: Int]) {
        self.index = index
        matcher = RouteMatcher(config.match)
        // Validation guarantees every referenced cluster exists.
        switch config.action {
        case .cluster(let name):
            destination = .cluster(clusterIndex[name] ?? 0)
        case .split(let entries):
            var bound = 0
            var cumulative: [(cluster: Int, upperBound: Int)] = []
            for entry in entries {
                bound += entry.weight
                cumulative.append((clusterIndex[entry.cluster] ?? 0, bound))
            }
            destination = .split(cumulative, total: bound)
        }
        timeout = config.timeout.map { TimeAmount.nanoseconds($0.nanoseconds) }
        headersToAdd = config.requestHeadersToAdd
        editedHeaderNames = (config.requestHeadersToRemove + config.requestHeadersToAdd.map(\.name)).map { $0.lowercased() }
        fault = config.fault
        retry = config.retries.map(RetryRules.init)
    }

    /// The delay to hold this request for, when the route's fault injection draws it.
    func faultDelay(using random: inout FastRandom) -> TimeAmount? {
        guard let delay = fault?.delay, delay.share.draw(using: &random) else { return nil }
        return .nanoseconds(delay.fixed.nanoseconds)
    }

    /// The answer to give instead of proxying, when the route's fault injection draws it.
    func faultAbort(using random: inout FastRandom) -> FaultAbort.Answer? {
        guard let abort = fault?.abort, abort.share.draw(using: &random) else { return nil }
        return abort.answer
    }

    /// The cluster index for one request.
    func pickCluster(using random: inout FastRandom) -> Int {
        switch destination {
        case .cluster(let index):
            return index
        case .split(let entries, let total):
            let draw = random.below(total)
            return entries.first { draw < $0.upperBound }?.cluster ?? entries[entries.count - 1].cluster
        }
    }

    /// Whether the route removes or replaces the client's fields named `name`.
    func editsHeader(named name: String) -> Bool {
        !editedHeaderNames.isEmpty && editedHeaderNames.contains { name.utf8.equalsIgnoringASCIICase($0.utf8) }
    }
}
