/// Counters from every event loop, added up, with string labels.
struct StatsSnapshot: Sendable {
    struct RouteLabels: Hashable, Sendable {
        var listener: String
        /// `inbound` or `outbound`.
        var direction: String
        var cluster: String
        /// The cluster's service (`destination_service`).
        var service: String
    }

    struct RequestLabels: Hashable, Sendable {
        var route: RouteLabels
        var endpoint: String
        var statusClass: String
        /// Empty for HTTP requests.
        var grpcStatus: String
    }

    struct ErrorLabels: Hashable, Sendable {
        var listener: String
        var reason: String
    }

    struct RetryLabels: Hashable, Sendable {
        var cluster: String
        var cause: String
    }

    struct TimeoutLabels: Hashable, Sendable {
        var cluster: String
        var kind: String
    }

    struct RouteMatchLabels: Hashable, Sendable {
        var listener: String
        /// The route's place in its listener's routes, from 0.
        var route: Int
        /// `CompiledListener.routesVersion`: loops may briefly count two.
        var routesVersion: Int
    }

    struct AuthorizationLabels: Hashable, Sendable {
        var listener: String
        var caller: String
        var decision: String
    }

    struct HTTP2ErrorLabels: Hashable, Sendable {
        var listener: String
        /// RFC 9113's name, e.g. PROTOCOL_ERROR.
        var code: String
        /// `stream` (RST_STREAM) or `connection` (GOAWAY).
        var scope: String
    }

    struct LimitLabels: Hashable, Sendable {
        var listener: String
        var limit: String
    }

    /// A listener's or a cluster's connections, by outcome.
    struct OutcomeLabels: Hashable, Sendable {
        var owner: String
        var succeeded: Bool
    }

    var requests: [RequestLabels: UInt64] = [:]
    var routes: [RouteLabels: LoopStats.RouteTally] = [:]
    /// By the called service.
    var unsentOutbound: [String: LoopStats.RouteTally] = [:]
    var routeMatches: [RouteMatchLabels: UInt64] = [:]
    var authorizations: [AuthorizationLabels: UInt64] = [:]
    var http2PeerErrors: [HTTP2ErrorLabels: UInt64] = [:]
    var limitsReached: [LimitLabels: UInt64] = [:]
    var proxyErrors: [ErrorLabels: UInt64] = [:]
    var retries: [RetryLabels: UInt64] = [:]
    var timeouts: [TimeoutLabels: UInt64] = [:]
    var downstreamHandshakes: [OutcomeLabels: UInt64] = [:]
    var upstreamHandshakes: [OutcomeLabels: UInt64] = [:]
    var upstreamConnects: [OutcomeLabels: UInt64] = [:]
    var activeConnections: [String: Int] = [:]
    var connectionsTotal: [String: UInt64] = [:]
    var activeRequests: [String: Int] = [:]
    /// Each cluster's circuit breaker; global already, so not merged.
    var circuitBreakers: [String: CircuitBreaker.Snapshot] = [:]
    /// Each outlier detector's counts; global too.
    var outlierDetectors: [String: OutlierDetector.Snapshot] = [:]
    var healthCheckers: [String: HealthChecker.Snapshot] = [:]
    /// The span exporter's counts; nil without `tracing`.
    var spans: OTLPExporter.Counts?

    mutating func merge(_ other: StatsSnapshot) {
        requests.merge(other.requests, uniquingKeysWith: +)
        for (key, tally) in other.routes {
            routes[key, default: LoopStats.RouteTally()].merge(tally)
        }
        for (service, tally) in other.unsentOutbound {
            unsentOutbound[service, default: LoopStats.RouteTally()].merge(tally)
        }
        proxyErrors.merge(other.proxyErrors, uniquingKeysWith: +)
        retries.merge(other.retries, uniquingKeysWith: +)
        timeouts.merge(other.timeouts, uniquingKeysWith: +)
        routeMatches.merge(other.routeMatches, uniquingKeysWith: +)
        authorizations.merge(other.authorizations, uniquingKeysWith: +)
        http2PeerErrors.merge(other.http2PeerErrors, uniquingKeysWith: +)
        limitsReached.merge(other.limitsReached, uniquingKeysWith: +)
        downstreamHandshakes.merge(other.downstreamHandshakes, uniquingKeysWith: +)
        upstreamHandshakes.merge(other.upstreamHandshakes, uniquingKeysWith: +)
        upstreamConnects.merge(other.upstreamConnects, uniquingKeysWith: +)
        activeConnections.merge(other.activeConnections, uniquingKeysWith: +)
        connectionsTotal.merge(other.connectionsTotal, uniquingKeysWith: +)
        activeRequests.merge(other.activeRequests, uniquingKeysWith: +)
    }
}
