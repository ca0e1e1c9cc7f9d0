import MeshConfig
import NIOCore
import Testing

@testable import MeshProxy

@Suite("Outlier detection state")
struct OutlierStateTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func state(
        endpoints: Int = 4, maxEjectionPercent: Int = 50, successRate: SuccessRateConfig? = nil
    ) -> OutlierState {
        var state = OutlierState(config: OutlierDetectionConfig(
            consecutiveErrors: 5, interval: .seconds(1), baseEjectionTime: .seconds(10), maxEjectionTime: .seconds(25),
            maxEjectionPercent: maxEjectionPercent, successRate: successRate))
        state.setEndpoints((0..<endpoints).map { "e\($0)" })
        return state
    }

    @Test func anEjectionLastsBaseTimesItsCountCapped() {
        var state = state()
        let first = state.eject("e0", now: start)
        #expect(first)
        #expect(state.endpoints["e0"]?.ejectedUntil == start + .seconds(10))
        let again = state.eject("e0", now: start)
        #expect(!again, "already ejected")
        // Back after 10s, ejected again at once: 20s this time, then capped at 25s.
        let returned = state.sweep(now: start + .seconds(10), outcomes: [:]).returned
        #expect(returned == ["e0"])
        let second = state.eject("e0", now: start + .seconds(10))
        #expect(second)
        #expect(state.endpoints["e0"]?.ejectedUntil == start + .seconds(30))
        _ = state.sweep(now: start + .seconds(30), outcomes: [:])
        let third = state.eject("e0", now: start + .seconds(30))
        #expect(third)
        #expect(state.endpoints["e0"]?.ejectedUntil == start + .seconds(55))
    }

    @Test func theMultiplierDecaysWhileInService() {
        var state = state()
        _ = state.eject("e0", now: start)
        _ = state.sweep(now: start + .seconds(10), outcomes: [:])
        #expect(state.endpoints["e0"]?.ejections == 1, "no decay in the interval it was ejected in")
        _ = state.sweep(now: start + .seconds(11), outcomes: [:])
        #expect(state.endpoints["e0"]?.ejections == 0)
    }

    @Test func maxEjectionPercentCapsEjectionsButOneIsAlwaysAllowed() {
        var half = state(endpoints: 4, maxEjectionPercent: 50)
        let halfResults = ["e0", "e1", "e2"].map { half.eject($0, now: start) }
        #expect(halfResults == [true, true, false])
        var none = state(endpoints: 3, maxEjectionPercent: 0)
        let noneResults = ["e0", "e1"].map { none.eject($0, now: start) }
        #expect(noneResults == [true, false])
    }

    @Test func endpointsThatLeaveAreForgotten() {
        var state = state(endpoints: 2)
        _ = state.eject("e0", now: start)
        state.setEndpoints(["e1", "e9"])
        #expect(state.endpoints.keys.sorted() == ["e1", "e9"])
        #expect(state.ejectedCount == 0)
        let unknown = state.eject("e0", now: start)
        #expect(!unknown, "unknown endpoint")
    }

    @Test func successRateEjectsTheFarOutlierOnly() {
        let config = SuccessRateConfig(minimumHosts: 3, requestVolume: 10, stdevFactor: 1.0)
        var state = state(endpoints: 5, maxEjectionPercent: 100, successRate: config)
        let outcomes: [String: (successes: Int, failures: Int)] = [
            "e0": (100, 0), "e1": (99, 1), "e2": (100, 0), "e3": (40, 60),
            "e4": (1, 5),  // too few requests to judge
        ]
        let changes = state.sweep(now: start, outcomes: outcomes)
        #expect(changes.ejected == ["e3"])
        #expect(state.endpoints["e3"]?.ejectedUntil != nil)
    }

    @Test func successRateNeedsEnoughEndpoints() {
        let config = SuccessRateConfig(minimumHosts: 5, requestVolume: 10, stdevFactor: 1.0)
        #expect(OutlierState.successRateOutliers(config, outcomes: ["a": (100, 0), "b": (0, 100)]).isEmpty)
    }
}
