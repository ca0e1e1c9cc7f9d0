import Testing
@testable import MeshConfig

@Suite("Outlier detection and panic threshold")
struct OutlierDetectionConfigTests {
    private func cluster(_ fields: String) throws -> ClusterConfig {
        try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:1], \(fields)")).clusters[0]
    }

    @Test func offUnlessConfiguredWithEnvoysDefaults() throws {
        #expect(try cluster("protocol: http1").settings.outlierDetection == nil)
        #expect(try cluster("protocol: http1").settings.panicThreshold == 50)
        let defaults = try cluster("outlierDetection: {}").settings.outlierDetection
        #expect(defaults == OutlierDetectionConfig(
            consecutiveErrors: 5, interval: .seconds(10), baseEjectionTime: .seconds(30), maxEjectionTime: .seconds(300),
            maxEjectionPercent: 10))
    }

    @Test func theContractsExampleDecodes() throws {
        let config = try cluster(
            "outlierDetection: { consecutiveErrors: 5, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50, "
                + "successRate: { minimumHosts: 3 } }, panicThreshold: 30")
        #expect(config.settings.outlierDetection == OutlierDetectionConfig(
            consecutiveErrors: 5, interval: .seconds(1), baseEjectionTime: .seconds(30), maxEjectionTime: .seconds(300),
            maxEjectionPercent: 50, successRate: SuccessRateConfig(minimumHosts: 3)))
        #expect(config.settings.panicThreshold == 30)
    }

    @Test func everyProblemOfTheBlockIsReportedAtOnce() {
        let found = issues(Fixture.cluster(
            "name: user, endpoints: [127.0.0.1:1], outlierDetection: { consecutiveErrors: 0, baseEjectionTime: 30s, maxEjectionTime: 10s }"))
        #expect(found.map(\.path) == ["clusters[0].outlierDetection.consecutiveErrors", "clusters[0].outlierDetection.maxEjectionTime"])
    }

    @Test func aLongBaseEjectionRaisesTheDefaultCap() throws {
        #expect(try cluster("outlierDetection: { baseEjectionTime: 10m }").settings.outlierDetection?.maxEjectionTime == .seconds(600))
    }

    @Test(arguments: [
        ("outlierDetection: { consecutiveErrors: 0 }", "clusters[0].outlierDetection.consecutiveErrors", "positive integer"),
        ("outlierDetection: { interval: 0s }", "clusters[0].outlierDetection.interval", "above zero"),
        ("outlierDetection: { maxEjectionPercent: 101 }", "clusters[0].outlierDetection.maxEjectionPercent", "0 to 100"),
        ("outlierDetection: { baseEjectionTime: 1m, maxEjectionTime: 30s }", "clusters[0].outlierDetection.maxEjectionTime", "at least 1m"),
        ("outlierDetection: { successRate: { stdevFactor: -1 } }", "clusters[0].outlierDetection.successRate.stdevFactor", "standard deviations"),
        ("outlierDetection: { consecutive5xx: 3 }", "clusters[0].outlierDetection.consecutive5xx", "unknown key"),
        ("panicThreshold: 120", "clusters[0].panicThreshold", "0 to 100"),
    ])
    func mistakesNameTheField(_ fields: String, _ path: String, _ fragment: String) {
        let issue = onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:1], \(fields)"))
        #expect(issue?.path == path)
        #expect(issue?.message.contains(fragment) == true, "\(issue?.message ?? "no single issue")")
    }
}
