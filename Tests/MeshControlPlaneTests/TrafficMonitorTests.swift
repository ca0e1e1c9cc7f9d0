import MeshAPI
import Testing

@testable import MeshControlPlane

@Suite("Traffic monitor")
struct TrafficMonitorTests {
    private static let bounds = [0.001, 0.01, 0.1]

    private static func totals(
        _ direction: String, _ service: String, answeredByProxy: Bool = false, requests: UInt64, failures: UInt64 = 0,
        buckets: [UInt64]
    ) -> Swiftmesh_V1_TrafficTotals {
        .with {
            $0.direction = direction
            $0.service = service
            $0.answeredByProxy = answeredByProxy
            $0.requests = requests
            $0.failures = failures
            $0.bucketBoundsSeconds = bounds
            $0.bucketCounts = buckets
        }
    }

    /// A caller's outbound report for `service`: every call, then apart the
    /// `unsent` ones its sidecar answered itself (all of them failures).
    private static func calls(
        to service: String, _ calls: UInt64, failed: UInt64, unsent: UInt64
    ) -> [Swiftmesh_V1_TrafficTotals] {
        [
            totals("outbound", service, requests: calls, failures: failed, buckets: [calls, 0, 0, 0]),
            totals("outbound", service, answeredByProxy: true, requests: unsent, failures: unsent,
                   buckets: [unsent, 0, 0, 0]),
        ]
    }

    @Test func ratesAndSuccessComeFromTheDifferenceOverTheWindow() throws {
        var monitor = TrafficMonitor()
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 100, failures: 10, buckets: [100, 0, 0, 0]),
        ], nowMillis: 0)
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 300, failures: 30, buckets: [100, 200, 0, 0]),
        ], nowMillis: 2000)
        let summary = monitor.summary(nowMillis: 2000)
        let edge = try #require(summary.edges[.init(from: "gateway", to: "user")])
        #expect(edge.requestsPerSecond == 100)
        #expect(edge.successRate == 0.9)
        // All 200 new requests fell between 1 ms and 10 ms: the median is halfway.
        #expect(abs((edge.p50Seconds ?? 0) - 0.0055) < 1e-9)
        // No sidecar serves user: its row is what its callers saw.
        #expect(summary.services["user"]?.stats.requestsPerSecond == 100)
        #expect(summary.services["user"]?.source == .callers)
        // Nobody calls the gateway through the mesh: its row is its own calls.
        #expect(summary.services["gateway"]?.stats.successRate == 0.9)
        #expect(summary.services["gateway"]?.source == .outbound)
    }

    @Test func inboundTrafficIsTheServicesOwnView() throws {
        var monitor = TrafficMonitor()
        for (id, extra) in [("user-1", UInt64(10)), ("user-2", UInt64(30))] {
            monitor.record(sidecarID: id, service: "user", traffic: [
                Self.totals("inbound", "user", requests: 0, buckets: [0, 0, 0, 0]),
            ], nowMillis: 0)
            monitor.record(sidecarID: id, service: "user", traffic: [
                Self.totals("inbound", "user", requests: extra, buckets: [0, 0, 0, extra]),
            ], nowMillis: 1000)
        }
        let user = try #require(monitor.summary(nowMillis: 1000).services["user"])
        #expect(user.source == .inbound)
        #expect(user.stats.requestsPerSecond == 40 && user.stats.successRate == 1)
        // Beyond the last bound: the highest finite bound, as histogram_quantile says.
        #expect(user.stats.p99Seconds == 0.1)
    }

    /// A caller's sidecar answered some calls itself (a fault abort): the
    /// instances never saw them, yet they are the service's failures.
    @Test func callsTheCallersSidecarAnsweredCountForTheService() throws {
        var monitor = TrafficMonitor()
        for (now, served, aborted) in [(Int64(0), UInt64(0), UInt64(0)), (1000, 90, 10)] {
            monitor.record(sidecarID: "user-1", service: "user", traffic: [
                Self.totals("inbound", "user", requests: served, buckets: [served, 0, 0, 0]),
            ], nowMillis: now)
            monitor.record(sidecarID: "gw", service: "gateway",
                           traffic: Self.calls(to: "user", served + aborted, failed: aborted, unsent: aborted),
                           nowMillis: now)
        }
        let summary = monitor.summary(nowMillis: 1000)
        let user = try #require(summary.services["user"])
        #expect(user.source == .inbound)
        #expect(user.stats.requestsPerSecond == 100 && user.stats.successRate == 0.9)
        // The edge counts each call once, whoever answered it.
        let edge = try #require(summary.edges[.init(from: "gateway", to: "user")])
        #expect(edge.requestsPerSecond == 100 && edge.successRate == 0.9)
    }

    /// Every instance down: the callers' sidecars answer every call, and the
    /// service fails rather than looking idle.
    @Test func aServiceWhoseCallsAllFailBeforeAnInstanceIsFailingNotIdle() throws {
        var monitor = TrafficMonitor()
        for (now, calls) in [(Int64(0), UInt64(0)), (1000, 20)] {
            monitor.record(sidecarID: "user-1", service: "user", traffic: [
                Self.totals("inbound", "user", requests: 5, buckets: [5, 0, 0, 0]),
            ], nowMillis: now)
            monitor.record(sidecarID: "gw", service: "gateway",
                           traffic: Self.calls(to: "user", calls, failed: calls, unsent: calls), nowMillis: now)
        }
        let user = try #require(monitor.summary(nowMillis: 1000).services["user"])
        #expect(user.source == .inbound && user.stats.requestsPerSecond == 20 && user.stats.successRate == 0)
    }

    /// A service outside the mesh: its callers' figures hold every call,
    /// the ones their sidecars answered themselves among them.
    @Test func aServiceOutsideTheMeshShowsEveryCallAsItsCallersSawIt() throws {
        var monitor = TrafficMonitor()
        for (now, calls, failed) in [(Int64(0), UInt64(0), UInt64(0)), (1000, 100, 1)] {
            monitor.record(sidecarID: "gw", service: "gateway",
                           traffic: Self.calls(to: "legacy", calls, failed: failed, unsent: failed), nowMillis: now)
        }
        let legacy = try #require(monitor.summary(nowMillis: 1000).services["legacy"])
        #expect(legacy.source == .callers && legacy.stats.requestsPerSecond == 100 && legacy.stats.successRate == 0.99)
    }

    /// Every instance of a service with sidecars is down: none ever served a
    /// call, yet the calls to it fail, and its row says so.
    @Test func aMeshServiceThatNeverServedShowsTheCallsItsCallersAnswered() throws {
        var monitor = TrafficMonitor()
        for (now, calls) in [(Int64(0), UInt64(0)), (1000, 10)] {
            monitor.record(sidecarID: "gw", service: "gateway",
                           traffic: Self.calls(to: "user", calls, failed: calls, unsent: calls), nowMillis: now)
        }
        let topology = TrafficMonitor.Topology(meshServices: ["user", "gateway"], entryServices: ["gateway"])
        let user = try #require(monitor.summary(nowMillis: 1000, topology: topology).services["user"])
        #expect(user.source == .inbound && user.stats.requestsPerSecond == 10 && user.stats.successRate == 0)
    }

    /// An entry service (nobody calls it through the mesh) shows its own
    /// calls, and says so even when it made none in the window.
    @Test func anEntryServiceIsMarkedSoEvenWhenIdle() throws {
        let topology = TrafficMonitor.Topology(meshServices: ["gateway"], entryServices: ["gateway"])
        let gateway = try #require(TrafficMonitor().summary(nowMillis: 1000, topology: topology).services["gateway"])
        #expect(gateway.source == .outbound && gateway.stats.successRate == nil && gateway.stats.requestsPerSecond == 0)
    }

    @Test func aRestartedProxyCountsFromZeroAndSilentSidecarsDropOut() {
        var monitor = TrafficMonitor()
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 500, buckets: [500, 0, 0, 0]),
        ], nowMillis: 0)
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 20, buckets: [20, 0, 0, 0]),
        ], nowMillis: 1000)
        #expect(monitor.summary(nowMillis: 1000).edges[.init(from: "gateway", to: "user")]?.requestsPerSecond == 20)
        #expect(monitor.summary(nowMillis: 1000 + TrafficMonitor.windowMillis).edges.isEmpty)
        monitor.forget(sidecarID: "gw")
        #expect(monitor.summary(nowMillis: 1000).edges.isEmpty)
    }

    @Test func reportsThatCannotBeTrueAreLeftOut() {
        var monitor = TrafficMonitor()
        let lies: [Swiftmesh_V1_TrafficTotals] = [
            Self.totals("outbound", "more-failures", requests: 1, failures: 2, buckets: [1, 0, 0, 0]),
            Self.totals("outbound", "more-in-buckets", requests: 1, buckets: [.max, 1, 0, 0]),
            Self.totals("sideways", "user", requests: 1, buckets: [1, 0, 0, 0]),
            Self.totals("outbound", "short", requests: 1, buckets: [1]),
        ]
        for now in [Int64(0), 1000] {
            monitor.record(sidecarID: "gw", service: "gateway", traffic: lies, nowMillis: now)
        }
        #expect(monitor.summary(nowMillis: 1000).edges.isEmpty)
    }

    @Test func aFailureCountThatFallsIsARestartNotAWrap() {
        var monitor = TrafficMonitor()
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 10, failures: 5, buckets: [10, 0, 0, 0]),
        ], nowMillis: 0)
        monitor.record(sidecarID: "gw", service: "gateway", traffic: [
            Self.totals("outbound", "user", requests: 20, failures: 1, buckets: [20, 0, 0, 0]),
        ], nowMillis: 1000)
        let edge = monitor.summary(nowMillis: 1000).edges[.init(from: "gateway", to: "user")]
        #expect(edge?.requestsPerSecond == 20 && edge?.successRate == 0.95)
    }

    @Test func quietWindowsHaveNoRatesToShow() {
        var idle = TrafficAccumulator()
        idle.boundsSeconds = Self.bounds
        idle.bucketCounts = [0, 0, 0, 0]
        #expect(idle.stats.successRate == nil && idle.stats.p50Seconds == nil && idle.stats.requestsPerSecond == 0)
    }
}
