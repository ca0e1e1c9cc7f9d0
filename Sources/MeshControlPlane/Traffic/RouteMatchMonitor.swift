import MeshAPI

/// A ServicePolicy's routes with the requests each matched over the last minute.
public struct PolicyRouteMatches: Sendable {
    public var policy: String
    public var service: String
    /// One per route of the policy, in order; nil: no sidecar calling the service reported long enough to say.
    public var routes: [UInt64?]
    /// The requests that matched none of the policy's routes and went to every instance.
    public var catchAll: UInt64?
}

/// How many requests each route of the sidecars' outbound listeners matched
/// over the last minute, per called service and route: what makes a
/// ServicePolicy route that matches nothing (a misspelt gRPC service) visible
/// in `swiftmesh get policies`. Sidecars send the counts their proxies kept
/// since they started with every heartbeat; the difference between a
/// sidecar's oldest and newest report in the window is what it matched.
struct RouteMatchMonitor {
    static let windowMillis: Int64 = 60_000
    /// At most this many routes per report are kept.
    static let maxEntriesPerReport = 256
    /// Reports closer together than this replace each other: a minute of a
    /// sidecar heartbeating every 10 ms keeps about 60, not 6,000.
    static let reportSpacingMillis: Int64 = 1_000

    struct Key: Hashable {
        /// The called service, whose outbound listener the route is on.
        var service: String
        /// The route's place in that listener: the ServicePolicy's routes, then the catch-all.
        var route: Int
    }

    /// A count as a sidecar reports it: of one version of the listener's routes.
    private struct VersionedKey: Hashable {
        var key: Key
        var routesVersion: UInt64
    }

    private struct Counts {
        var routes: [VersionedKey: UInt64]
        /// The services the sidecar calls: it counts for their routes even where they matched nothing.
        var services: Set<String>
    }

    private var reports: [String: ReportWindow<Counts>] = [:]

    /// `services`: the upstreams of the sidecar, whose outbound listeners it reports on.
    mutating func record(sidecarID: String, services: [String], routes: [Swiftmesh_V1_RouteTotals], nowMillis: Int64) {
        var counts: [VersionedKey: UInt64] = [:]
        for entry in routes.prefix(Self.maxEntriesPerReport) where services.contains(entry.service) {
            counts[VersionedKey(key: Key(service: entry.service, route: Int(entry.route)), routesVersion: entry.routesVersion)] =
                entry.requests
        }
        reports[sidecarID, default: ReportWindow(windowMillis: Self.windowMillis, spacingMillis: Self.reportSpacingMillis)]
            .add(Counts(routes: counts, services: Set(services)), atMillis: nowMillis)
    }

    mutating func forget(sidecarID: String) {
        reports.removeValue(forKey: sidecarID)
    }

    /// How many reports of the sidecar are kept (for tests of the bounds).
    func keptReports(of sidecarID: String) -> Int {
        reports[sidecarID]?.reports.count ?? 0
    }

    /// Over the last window: the requests each route matched, and the
    /// services some sidecar reported on for long enough to say (a route of
    /// such a service missing from the counts matched nothing).
    func matched(nowMillis: Int64) -> (counts: [Key: UInt64], reported: Set<String>) {
        var counts: [Key: UInt64] = [:]
        var reported: Set<String> = []
        for window in reports.values {
            // A sidecar silent for a traffic window is gone (its stream ends soon).
            guard let (oldest, newest) = window.span(nowMillis: nowMillis, freshMillis: TrafficMonitor.windowMillis)
                .map({ ($0.oldest.counts, $0.newest.counts) }) else { continue }
            reported.formUnion(newest.services)
            // Only the routes the sidecar has now: its proxy's event loops
            // may still hold counts of the ones before.
            var current: [String: UInt64] = [:]
            for versioned in newest.routes.keys {
                current[versioned.key.service] = max(current[versioned.key.service] ?? 0, versioned.routesVersion)
            }
            for (versioned, now) in newest.routes where current[versioned.key.service] == versioned.routesVersion {
                // Routes that changed since the oldest report counted from
                // zero since; a count below its earlier value: the proxy restarted.
                let before = oldest.routes[versioned].flatMap { $0 <= now ? $0 : nil } ?? 0
                let (sum, overflow) = counts[versioned.key, default: 0].addingReportingOverflow(now - before)
                counts[versioned.key] = overflow ? .max : sum
            }
        }
        return (counts, reported)
    }
}
