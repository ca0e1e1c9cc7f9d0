import MeshConfig

/// What a sidecar sends with every heartbeat: the proxy's counts since it started.
public struct TrafficReport: Sendable, Equatable {
    public var totals: [TrafficTotals]
    public var routeMatches: [RouteMatchTotal]
}

/// The requests one route matched since the proxy started.
public struct RouteMatchTotal: Sendable, Equatable {
    public var listener: String
    /// The route's place in the listener's routes, from 0.
    public var route: Int
    /// Changes whenever the listener's routes change: a count of another
    /// version is of the route that had this place before.
    public var routesVersion: Int
    public var requests: UInt64
}

/// What the proxy counted for one direction and one service since it
/// started: a sidecar sends these with every heartbeat, and the control
/// plane turns the differences into live rates and latencies.
public struct TrafficTotals: Sendable, Equatable {
    public var direction: TrafficDirection
    /// Outbound: the service called; inbound: the service served.
    public var service: String
    /// Outbound only: these are the requests to `service` the proxy answered
    /// itself, no endpoint having taken them (a fault abort, no endpoints, an
    /// overflow, failed connects). A subset of the service's outbound entry,
    /// reported apart because no instance counts them.
    public var answeredByProxy: Bool
    public var requests: UInt64
    /// `FinishedRequest.isFailure`: 5xx responses, gRPC statuses other than
    /// OK, and the proxy's refusals (a denial, no route, a fault abort).
    public var failures: UInt64
    /// Upper bounds in seconds; the last bucket (+Inf) has none.
    public var bucketBoundsSeconds: [Double]
    /// Requests per bucket, not cumulative: one more than the bounds.
    public var bucketCounts: [UInt64]

    public init(
        direction: TrafficDirection, service: String, answeredByProxy: Bool = false, requests: UInt64, failures: UInt64,
        bucketBoundsSeconds: [Double], bucketCounts: [UInt64]
    ) {
        self.direction = direction
        self.service = service
        self.answeredByProxy = answeredByProxy
        self.requests = requests
        self.failures = failures
        self.bucketBoundsSeconds = bucketBoundsSeconds
        self.bucketCounts = bucketCounts
    }
}

extension StatsSnapshot {
    var trafficReport: TrafficReport {
        TrafficReport(
            totals: trafficTotals,
            routeMatches: routeMatches.keys.sorted {
                ($0.listener, $0.routesVersion, $0.route) < ($1.listener, $1.routesVersion, $1.route)
            }.map {
                RouteMatchTotal(
                    listener: $0.listener, route: $0.route, routesVersion: $0.routesVersion, requests: routeMatches[$0] ?? 0)
            })
    }

    /// Per direction and destination service, then the outbound requests
    /// per service that no endpoint took. Requests on a listener whose routes
    /// lead to several services, answered before a cluster was picked (no
    /// route, malformed), belong to no service and are left out.
    var trafficTotals: [TrafficTotals] {
        struct Key: Hashable {
            var direction: String
            var service: String
        }
        var totals: [Key: LoopStats.RouteTally] = [:]
        for (labels, tally) in routes where !labels.service.isEmpty {
            totals[Key(direction: labels.direction, service: labels.service), default: LoopStats.RouteTally()].merge(tally)
        }
        func report(_ tally: LoopStats.RouteTally, direction: TrafficDirection, service: String, answeredByProxy: Bool)
            -> TrafficTotals
        {
            TrafficTotals(
                direction: direction, service: service, answeredByProxy: answeredByProxy,
                requests: tally.durations.count, failures: tally.failures,
                bucketBoundsSeconds: DurationHistogram.boundsSeconds, bucketCounts: tally.durations.counts)
        }
        let all = totals.keys.sorted { ($0.direction, $0.service) < ($1.direction, $1.service) }.compactMap { key in
            totals[key].map {
                report($0, direction: TrafficDirection(rawValue: key.direction) ?? .outbound, service: key.service,
                       answeredByProxy: false)
            }
        }
        let unsent = unsentOutbound.keys.sorted().compactMap { service in
            unsentOutbound[service].map { report($0, direction: .outbound, service: service, answeredByProxy: true) }
        }
        return all + unsent
    }
}
