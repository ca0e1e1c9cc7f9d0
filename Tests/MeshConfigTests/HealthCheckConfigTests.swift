import Testing
@testable import MeshConfig

@Suite("Active health checks")
struct HealthCheckConfigTests {
    private func healthCheck(_ fields: String) throws -> HealthCheckConfig? {
        try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:1], \(fields)")).clusters[0].settings.healthCheck
    }

    @Test func theContractsExampleDecodes() throws {
        let config = try healthCheck(
            "protocol: http2, healthCheck: { grpc: { service: \"\" }, interval: 1s, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1 }")
        #expect(config == HealthCheckConfig(
            probe: .grpc(service: ""), interval: .seconds(1), timeout: .milliseconds(500), unhealthyThreshold: 2,
            healthyThreshold: 1))
    }

    @Test func probesWithKubernetesDefaults() throws {
        #expect(try healthCheck("healthCheck: { http: { path: /healthz } }") == HealthCheckConfig(
            probe: .http(path: "/healthz", expectedStatuses: [200]), interval: .seconds(10), timeout: .seconds(1),
            unhealthyThreshold: 3, healthyThreshold: 1))
        #expect(try healthCheck("healthCheck: { http: { path: /ready, expectedStatuses: [200, 204] } }")?.probe
            == .http(path: "/ready", expectedStatuses: [200, 204]))
        #expect(try healthCheck("healthCheck: { tcp: {} }")?.probe == .tcp)
        #expect(try healthCheck("protocol: http2, healthCheck: { grpc: {} }")?.probe == .grpc(service: ""))
    }

    @Test(arguments: [
        ("healthCheck: { interval: 1s }", "clusters[0].healthCheck", "has no probe"),
        ("healthCheck: { tcp: {}, http: { path: / } }", "clusters[0].healthCheck", "keep one kind"),
        ("healthCheck: { grpc: {} }", "clusters[0].healthCheck.grpc", "set protocol: http2"),
        ("healthCheck: { http: {} }", "clusters[0].healthCheck.http.path", "path: /healthz"),
        ("healthCheck: { http: { path: healthz } }", "clusters[0].healthCheck.http.path", "starting with /"),
        ("healthCheck: { http: { path: /h, expectedStatuses: [] } }", "clusters[0].healthCheck.http.expectedStatuses", "at least one"),
        ("healthCheck: { tcp: {}, timeout: 0s }", "clusters[0].healthCheck.timeout", "above zero"),
        ("healthCheck: { tcp: {}, unhealthyThreshold: 0 }", "clusters[0].healthCheck.unhealthyThreshold", "positive integer"),
        ("healthCheck: { tcp: { port: 1 } }", "clusters[0].healthCheck.tcp.port", "unknown key"),
    ])
    func mistakesNameTheField(_ fields: String, _ path: String, _ fragment: String) {
        let issue = onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:1], \(fields)"))
        #expect(issue?.path == path)
        #expect(issue?.message.contains(fragment) == true, "\(issue?.message ?? "no single issue")")
    }
}
