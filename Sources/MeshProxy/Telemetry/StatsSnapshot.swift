/// Counters from every event loop, added up, with string labels.
struct StatsSnapshot: Sendable {
    struct RequestLabels: Hashable, Sendable {
        var listener: String
        var cluster: String
        var endpoint: String
        var statusClass: String
    }

    struct RouteLabels: Hashable, Sendable {
        var listener: String
        var cluster: String
    }

    struct ErrorLabels: Hashable, Sendable {
        var listener: String
        var reason: String
    }

    struct RetryLabels: Hashable, Sendable {
        var cluster: String
        var cause: String
    }

    struct AuthorizationLabels: Hashable, Sendable {
        var listener: String
        var caller: String
        var decision: String
    }

    var requests: [RequestLabels: UInt64] = [:]
    var authorizations: [AuthorizationLabels: UInt64] = [:]
    var durations: [RouteLabels: DurationHistogram] = [:]
    var proxyErrors: [ErrorLabels: UInt64] = [:]
    var retries: [RetryLabels: UInt64] = [:]
    var activeConnections: [String: Int] = [:]
    var connectionsTotal: [String: UInt64] = [:]
    var activeRequests: [String: Int] = [:]
    /// Each cluster's circuit breaker; global already, so not merged.
    var circuitBreakers: [String: CircuitBreaker.Snapshot] = [:]
    /// Each outlier detector's counts; global too.
    var outlierDetectors: [String: OutlierDetector.Snapshot] = [:]
    var healthCheckers: [String: HealthChecker.Snapshot] = [:]

    mutating func merge(_ other: StatsSnapshot) {
        requests.merge(other.requests, uniquingKeysWith: +)
        for (key, histogram) in other.durations {
            durations[key, default: DurationHistogram()].merge(histogram)
        }
        proxyErrors.merge(other.proxyErrors, uniquingKeysWith: +)
        retries.merge(other.retries, uniquingKeysWith: +)
        authorizations.merge(other.authorizations, uniquingKeysWith: +)
        activeConnections.merge(other.activeConnections, uniquingKeysWith: +)
        connectionsTotal.merge(other.connectionsTotal, uniquingKeysWith: +)
        activeRequests.merge(other.activeRequests, uniquingKeysWith: +)
    }
}
