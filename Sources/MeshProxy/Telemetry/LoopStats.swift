/// The counters of one event loop. Only that loop touches them, so the data
/// path increments plain integers; the admin server reads a copy from each
/// loop (on the loop) and adds them up when scraped.
final class LoopStats {
    /// Label values interned as small integers, so a request hashes integers, not strings.
    private var labelIDs: [String: Int] = [:]
    private(set) var labels: [String] = []

    struct RequestKey: Hashable {
        var listener: Int
        var cluster: Int
        var endpoint: Int
        var statusClass: StatusClass
    }

    struct RouteKey: Hashable {
        var listener: Int
        var cluster: Int
    }

    private(set) var requests: [RequestKey: UInt64] = [:]
    private(set) var durations: [RouteKey: DurationHistogram] = [:]
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

    struct AuthorizationKey: Hashable {
        var listener: Int
        var caller: Int
        var allowed: Bool
    }

    private(set) var authorizations: [AuthorizationKey: UInt64] = [:]

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

    func requestFinished(
        listener: Int, cluster: Int, endpoint: Int, status: StatusClass, durationNanoseconds: Int64, error: ProxyError?
    ) {
        activeRequests[listener, default: 0] -= 1
        requests[RequestKey(listener: listener, cluster: cluster, endpoint: endpoint, statusClass: status), default: 0] += 1
        durations[RouteKey(listener: listener, cluster: cluster), default: DurationHistogram()]
            .observe(nanoseconds: durationNanoseconds)
        if let error {
            proxyErrors[ErrorKey(listener: listener, reason: error.reason), default: 0] += 1
        }
    }

    func authorizationDecided(listener: Int, caller: Int, allowed: Bool) {
        authorizations[AuthorizationKey(listener: listener, caller: caller, allowed: allowed), default: 0] += 1
    }

    func requestRetried(cluster: Int, cause: String) {
        retries[RetryKey(cluster: cluster, cause: cause), default: 0] += 1
    }

    /// A copy with label ids resolved to strings, safe to hand to another thread.
    func snapshot() -> StatsSnapshot {
        var snapshot = StatsSnapshot()
        for (key, count) in requests {
            snapshot.requests[.init(
                listener: labels[key.listener], cluster: labels[key.cluster],
                endpoint: labels[key.endpoint], statusClass: key.statusClass.label
            ), default: 0] += count
        }
        for (key, histogram) in durations {
            snapshot.durations[.init(listener: labels[key.listener], cluster: labels[key.cluster]), default: DurationHistogram()]
                .merge(histogram)
        }
        for (key, count) in proxyErrors {
            snapshot.proxyErrors[.init(listener: labels[key.listener], reason: key.reason), default: 0] += count
        }
        for (key, count) in retries {
            snapshot.retries[.init(cluster: labels[key.cluster], cause: key.cause), default: 0] += count
        }
        for (key, count) in authorizations {
            snapshot.authorizations[.init(
                listener: labels[key.listener], caller: labels[key.caller], decision: key.allowed ? "allow" : "deny"
            ), default: 0] += count
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
