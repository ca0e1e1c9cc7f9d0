import MeshConfig
import MeshHTTP2
import NIOHTTP2

/// The counters of one event loop. Only that loop touches them, so the data
/// path increments plain integers; the admin server reads a copy from each
/// loop (on the loop) and adds them up when scraped.
final class LoopStats {
    /// Label values interned as small integers, so a request hashes integers, not strings.
    private var labelIDs: [String: Int] = [:]
    private(set) var labels: [String] = []

    /// What a listener's requests are counted by, besides their outcome.
    struct RouteKey: Hashable {
        var listener: Int
        var direction: TrafficDirection
        var cluster: Int
        /// The cluster's `destinationService`.
        var service: Int
    }

    struct RequestKey: Hashable {
        var route: RouteKey
        var endpoint: Int
        var statusClass: StatusClass
        /// `FinishedRequest.noGRPCStatus` for HTTP requests.
        var grpcStatus: UInt8
    }

    /// Per route: how long requests took, how many failed
    /// (`FinishedRequest.isFailure`) and how many body bytes they moved.
    struct RouteTally: Sendable {
        var durations = DurationHistogram()
        var failures: UInt64 = 0
        var bytesReceived: UInt64 = 0
        var bytesSent: UInt64 = 0

        mutating func merge(_ other: RouteTally) {
            durations.merge(other.durations)
            failures &+= other.failures
            bytesReceived &+= other.bytesReceived
            bytesSent &+= other.bytesSent
        }
    }

    private(set) var requests: [RequestKey: UInt64] = [:]
    private(set) var routes: [RouteKey: RouteTally] = [:]

    /// Outbound requests this proxy answered itself without any endpoint
    /// taking them (a fault abort, no endpoints, an overflow, a failed
    /// connect), by the called service's label: no instance counts them, so
    /// the control plane adds them to the service's own figures.
    private(set) var unsentOutbound: [Int: RouteTally] = [:]
    private(set) var proxyErrors: [ErrorKey: UInt64] = [:]
    /// By listener label.
    private(set) var activeConnections: [Int: Int] = [:]
    private(set) var connectionsTotal: [Int: UInt64] = [:]
    private(set) var activeRequests: [Int: Int] = [:]

    struct ErrorKey: Hashable {
        var listener: Int
        var reason: String
    }

    struct RetryKey: Hashable {
        var cluster: Int
        var cause: String
    }

    private(set) var retries: [RetryKey: UInt64] = [:]

    /// `route` (the route's timeout or the gRPC deadline) or `per_try`.
    struct TimeoutKey: Hashable {
        var cluster: Int
        var kind: String
    }

    private(set) var timeouts: [TimeoutKey: UInt64] = [:]

    struct AuthorizationKey: Hashable {
        var listener: Int
        var caller: Int
        var allowed: Bool
    }

    private(set) var authorizations: [AuthorizationKey: UInt64] = [:]

    /// What one listener's routes matched since they last changed.
    struct ListenerRouteMatches {
        /// `CompiledListener.routesVersion`.
        var routesVersion: Int
        /// By the route's place in the listener's routes.
        var counts: [UInt64]

        /// Counts a match of the routes of `version` only: a connection
        /// reads its listener from the table the loop has, so another
        /// version (or a route out of range) would be a bug, never counted wrong.
        mutating func count(route: Int, version: Int) {
            guard version == routesVersion, counts.indices.contains(route) else { return }
            counts[route] &+= 1
        }
    }

    /// Requests each route matched, by listener label: a route that matches nothing shows as such.
    private(set) var routeMatches: [Int: ListenerRouteMatches] = [:]

    /// A client's HTTP/2 error the codec answered, by its RFC 9113 code.
    struct HTTP2ErrorKey: Hashable {
        var listener: Int
        var code: UInt32
        var endedConnection: Bool
    }

    private(set) var http2PeerErrors: [HTTP2ErrorKey: UInt64] = [:]

    /// A listener's per-client limit that fired (`ListenerLimit`).
    struct LimitKey: Hashable {
        var listener: Int
        var limit: ListenerLimit
    }

    private(set) var limitsReached: [LimitKey: UInt64] = [:]

    /// A TLS handshake on a listener's connection (downstream) or a cluster's (upstream).
    struct HandshakeKey: Hashable {
        /// The listener's or the cluster's label.
        var owner: Int
        var succeeded: Bool
    }

    private(set) var downstreamHandshakes: [HandshakeKey: UInt64] = [:]
    private(set) var upstreamHandshakes: [HandshakeKey: UInt64] = [:]
    /// TCP connects to a cluster's endpoints, by whether they succeeded.
    private(set) var upstreamConnects: [HandshakeKey: UInt64] = [:]

    /// The id of a label value; the empty string (no cluster, no endpoint) is id 0.
    func label(_ value: String) -> Int {
        if let id = labelIDs[value] { return id }
        let id = labels.count
        labels.append(value)
        labelIDs[value] = id
        return id
    }

    init() {
        _ = label("")
    }

    func connectionOpened(listener: Int) {
        activeConnections[listener, default: 0] += 1
        connectionsTotal[listener, default: 0] += 1
    }

    func connectionClosed(listener: Int) {
        activeConnections[listener, default: 0] -= 1
    }

    func requestStarted(listener: Int) {
        activeRequests[listener, default: 0] += 1
    }

    func requestFinished(_ request: FinishedRequest) {
        activeRequests[request.route.listener, default: 0] -= 1
        let key = RequestKey(
            route: request.route, endpoint: request.endpoint, statusClass: request.status, grpcStatus: request.grpcStatus)
        requests[key, default: 0] += 1
        routes[request.route, default: RouteTally()].record(request)
        if request.route.direction == .outbound, !request.reachedEndpoint, request.route.service != 0 {
            unsentOutbound[request.route.service, default: RouteTally()].record(request)
        }
        if let error = request.error {
            proxyErrors[ErrorKey(listener: request.route.listener, reason: error.reason), default: 0] += 1
        }
    }

    /// `routesVersion`: the version of the listener's routes the request was routed by.
    func routeMatched(listener: Int, routesVersion: Int, route: Int) {
        routeMatches[listener]?.count(route: route, version: routesVersion)
    }

    /// A new routing table is in use, before any request is routed by it: a
    /// listener whose routes changed counts from zero (what its old routes
    /// matched is of other routes), and a removed listener's counts go.
    func routesPublished(_ table: RoutingTable) {
        let listening = Set(table.listeners.keys.map(label))
        routeMatches = routeMatches.filter { listening.contains($0.key) }
        for (name, compiled) in table.listeners where routeMatches[label(name)]?.routesVersion != compiled.routesVersion {
            routeMatches[label(name)] = ListenerRouteMatches(
                routesVersion: compiled.routesVersion, counts: Array(repeating: 0, count: compiled.routes.count))
        }
    }

    func authorizationDecided(listener: Int, caller: Int, allowed: Bool) {
        authorizations[AuthorizationKey(listener: listener, caller: caller, allowed: allowed), default: 0] += 1
    }

    func http2PeerError(listener: Int, code: HTTP2ErrorCode, endedConnection: Bool) {
        let key = HTTP2ErrorKey(listener: listener, code: UInt32(code.networkCode), endedConnection: endedConnection)
        http2PeerErrors[key, default: 0] += 1
    }

    func limitReached(listener: Int, _ limit: ListenerLimit) {
        limitsReached[LimitKey(listener: listener, limit: limit), default: 0] += 1
    }

    func requestRetried(cluster: Int, cause: String) {
        retries[RetryKey(cluster: cluster, cause: cause), default: 0] += 1
    }

    func timedOut(cluster: Int, kind: String) {
        timeouts[TimeoutKey(cluster: cluster, kind: kind), default: 0] += 1
    }

    func downstreamHandshake(listener: Int, succeeded: Bool) {
        downstreamHandshakes[HandshakeKey(owner: listener, succeeded: succeeded), default: 0] += 1
    }

    func upstreamHandshake(cluster: Int, succeeded: Bool) {
        upstreamHandshakes[HandshakeKey(owner: cluster, succeeded: succeeded), default: 0] += 1
    }

    func upstreamConnect(cluster: Int, succeeded: Bool) {
        upstreamConnects[HandshakeKey(owner: cluster, succeeded: succeeded), default: 0] += 1
    }

    /// A copy with label ids resolved to strings, safe to hand to another thread.
    func snapshot() -> StatsSnapshot {
        var snapshot = StatsSnapshot()
        for (key, count) in requests {
            snapshot.requests[.init(
                route: routeLabels(key.route), endpoint: labels[key.endpoint], statusClass: key.statusClass.label,
                grpcStatus: key.grpcStatus == FinishedRequest.noGRPCStatus ? "" : String(key.grpcStatus)
            ), default: 0] += count
        }
        for (key, tally) in routes {
            snapshot.routes[routeLabels(key), default: RouteTally()].merge(tally)
        }
        for (service, tally) in unsentOutbound {
            snapshot.unsentOutbound[labels[service], default: RouteTally()].merge(tally)
        }
        for (key, count) in proxyErrors {
            snapshot.proxyErrors[.init(listener: labels[key.listener], reason: key.reason), default: 0] += count
        }
        for (key, count) in retries {
            snapshot.retries[.init(cluster: labels[key.cluster], cause: key.cause), default: 0] += count
        }
        for (key, count) in timeouts {
            snapshot.timeouts[.init(cluster: labels[key.cluster], kind: key.kind), default: 0] += count
        }
        for (listener, matches) in routeMatches {
            for (route, count) in matches.counts.enumerated() {
                let key = StatsSnapshot.RouteMatchLabels(
                    listener: labels[listener], route: route, routesVersion: matches.routesVersion)
                snapshot.routeMatches[key, default: 0] += count
            }
        }
        for (key, count) in authorizations {
            snapshot.authorizations[.init(
                listener: labels[key.listener], caller: labels[key.caller], decision: key.allowed ? "allow" : "deny"
            ), default: 0] += count
        }
        for (key, count) in http2PeerErrors {
            snapshot.http2PeerErrors[.init(
                listener: labels[key.listener], code: HTTP2Wire.errorName(HTTP2ErrorCode(networkCode: Int(key.code))),
                scope: key.endedConnection ? "connection" : "stream"
            ), default: 0] += count
        }
        for (key, count) in limitsReached {
            snapshot.limitsReached[.init(listener: labels[key.listener], limit: key.limit.rawValue), default: 0] += count
        }
        for (source, target) in [
            (downstreamHandshakes, \StatsSnapshot.downstreamHandshakes), (upstreamHandshakes, \.upstreamHandshakes),
            (upstreamConnects, \.upstreamConnects),
        ] {
            for (key, count) in source {
                snapshot[keyPath: target][.init(owner: labels[key.owner], succeeded: key.succeeded), default: 0] += count
            }
        }
        for (listener, value) in activeConnections {
            snapshot.activeConnections[labels[listener], default: 0] += value
        }
        for (listener, value) in connectionsTotal {
            snapshot.connectionsTotal[labels[listener], default: 0] += value
        }
        for (listener, value) in activeRequests {
            snapshot.activeRequests[labels[listener], default: 0] += value
        }
        return snapshot
    }

    private func routeLabels(_ key: RouteKey) -> StatsSnapshot.RouteLabels {
        StatsSnapshot.RouteLabels(
            listener: labels[key.listener], direction: key.direction.rawValue, cluster: labels[key.cluster],
            service: labels[key.service])
    }
}

/// What a finished request is counted by, with label values interned in the loop's stats.
struct FinishedRequest {
    /// `grpcStatus` of a request that is not gRPC, or whose response carried no status.
    static let noGRPCStatus = UInt8.max

    var route: LoopStats.RouteKey
    /// An endpoint's connection or stream took the request (on some try).
    var reachedEndpoint: Bool
    /// The response is another proxy's refusal (`RequestInfo.refusedOnTheWay`).
    var refusedOnTheWay = false
    var endpoint: Int
    var status: StatusClass
    var grpcStatus: UInt8
    var durationNanoseconds: Int64
    var bytesReceived: Int
    var bytesSent: Int
    var error: ProxyError?

    /// What the live traffic views count as failed: a 5xx response, a gRPC
    /// status other than OK, or an answer this proxy or another on the way
    /// made that refused the call (a denial, no route, a fault abort),
    /// whatever its status.
    var isFailure: Bool {
        status == .serverError || grpcStatus != Self.noGRPCStatus && grpcStatus != 0 || error?.failsTheCall == true
            || refusedOnTheWay
    }
}

extension LoopStats.RouteTally {
    fileprivate mutating func record(_ request: FinishedRequest) {
        durations.observe(nanoseconds: request.durationNanoseconds)
        if request.isFailure {
            failures &+= 1
        }
        bytesReceived &+= UInt64(request.bytesReceived)
        bytesSent &+= UInt64(request.bytesSent)
    }
}

/// The status of a finished request as a metric label: `2xx` … `5xx`, or
/// `none` when the client went away before any response was sent.
enum StatusClass: UInt8, Hashable, Sendable {
    case informational = 1, success, redirection, clientError, serverError
    case none = 0

    init(code: Int) {
        switch code {
        case 100..<200: self = .informational
        case 200..<300: self = .success
        case 300..<400: self = .redirection
        case 400..<500: self = .clientError
        case 500..<600: self = .serverError
        default: self = .none
        }
    }

    var label: String {
        self == .none ? "none" : "\(rawValue)xx"
    }
}
