import MeshAPI
import Testing

@testable import MeshControlPlane

@Suite("Route match monitor")
struct RouteMatchMonitorTests {
    private static func route(_ service: String, _ route: UInt32, _ requests: UInt64, version: UInt64 = 1)
        -> Swiftmesh_V1_RouteTotals
    {
        .with {
            $0.service = service
            $0.route = route
            $0.requests = requests
            $0.routesVersion = version
        }
    }

    @Test func countsWhatEachRouteMatchedOverTheWindowAcrossSidecars() {
        var monitor = RouteMatchMonitor()
        for (id, base) in [("gw-1", UInt64(100)), ("gw-2", 0)] {
            monitor.record(sidecarID: id, services: ["user"], routes: [Self.route("user", 1, base)], nowMillis: 0)
            monitor.record(sidecarID: id, services: ["user"], routes: [Self.route("user", 1, base + 30)], nowMillis: 1000)
        }
        let (counts, reported) = monitor.matched(nowMillis: 1000)
        #expect(reported == ["user"])
        // Route 0 matched nothing: it is in no report, and the service reported.
        #expect(counts[.init(service: "user", route: 0)] == nil)
        #expect(counts[.init(service: "user", route: 1)] == 60)
    }

    @Test func aSidecarReportsOnlyForTheServicesItCalls() {
        var monitor = RouteMatchMonitor()
        for now in [Int64(0), 1000] {
            monitor.record(sidecarID: "gw", services: ["user"], routes: [Self.route("billing", 0, UInt64(now))],
                           nowMillis: now)
        }
        let (counts, reported) = monitor.matched(nowMillis: 1000)
        #expect(counts.isEmpty && reported == ["user"])
    }

    /// New routes in the listener (a policy changed): what the old route at
    /// an index matched is not the new one's, and loops still holding old
    /// counts do not count.
    @Test func countsOfRoutesThatChangedAreNotTheNewRoutes() {
        var monitor = RouteMatchMonitor()
        monitor.record(sidecarID: "gw", services: ["user"], routes: [Self.route("user", 0, 500, version: 1)],
                       nowMillis: 0)
        monitor.record(sidecarID: "gw", services: ["user"], routes: [
            Self.route("user", 0, 520, version: 1), Self.route("user", 0, 7, version: 4), Self.route("user", 1, 3, version: 4),
        ], nowMillis: 1000)
        let (counts, _) = monitor.matched(nowMillis: 1000)
        #expect(counts[.init(service: "user", route: 0)] == 7)
        #expect(counts[.init(service: "user", route: 1)] == 3)
    }

    @Test func aRestartCountsFromZeroAndSilentSidecarsDropOut() {
        var monitor = RouteMatchMonitor()
        monitor.record(sidecarID: "gw", services: ["user"], routes: [Self.route("user", 0, 900)], nowMillis: 0)
        monitor.record(sidecarID: "gw", services: ["user"], routes: [Self.route("user", 0, 40)], nowMillis: 1000)
        #expect(monitor.matched(nowMillis: 1000).counts[.init(service: "user", route: 0)] == 40)
        #expect(monitor.matched(nowMillis: 1000 + TrafficMonitor.windowMillis).reported.isEmpty)
        monitor.forget(sidecarID: "gw")
        #expect(monitor.matched(nowMillis: 1000).counts.isEmpty)
    }

    /// A sidecar that heartbeats every 10 ms (or lies) holds a bounded
    /// number of reports, each of a bounded number of routes.
    @Test func reportsAreSpacedAndBounded() {
        var monitor = RouteMatchMonitor()
        let many = (0..<5000).map { Self.route("user", UInt32($0), 1) }
        for now in stride(from: Int64(0), through: 60_000, by: 10) {
            monitor.record(sidecarID: "gw", services: ["user"], routes: many, nowMillis: now)
        }
        #expect(monitor.keptReports(of: "gw") <= 62)
        #expect(monitor.matched(nowMillis: 60_000).counts.count <= RouteMatchMonitor.maxEntriesPerReport)
    }

    @Test func theWindowIsAMinute() {
        var monitor = RouteMatchMonitor()
        for (now, count) in [(Int64(0), UInt64(0)), (30_000, 10), (95_000, 25)] {
            monitor.record(sidecarID: "gw", services: ["user"], routes: [Self.route("user", 0, count)], nowMillis: now)
        }
        // The report at 0 s fell out; the one at 30 s, the last before the window, starts the difference.
        #expect(monitor.matched(nowMillis: 95_000).counts[.init(service: "user", route: 0)] == 15)
    }
}
