import Testing
@testable import MeshConfig

@Suite("Idle timeouts")
struct IdleTimeoutConfigTests {
    @Test func defaultToAnHour() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document())
        #expect(config.listeners[0].idleTimeout == .seconds(3600))
        #expect(config.clusters[0].settings.idleTimeout == .seconds(3600))
    }

    @Test func setPerListenerAndCluster() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(
            listeners: [Fixture.listener(extra: ", idleTimeout: 90s")],
            clusters: ["{ name: user, idleTimeout: 30s, endpoints: [127.0.0.1:9000] }"]))
        #expect(config.listeners[0].idleTimeout == .seconds(90))
        #expect(config.clusters[0].settings.idleTimeout == .seconds(30))
    }

    @Test func zeroIsRefusedWithItsPath() {
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(extra: ", idleTimeout: 0s")]))?.path
            == "listeners[0].idleTimeout")
        #expect(onlyIssue(Fixture.cluster("name: user, idleTimeout: 0s, endpoints: [127.0.0.1:1]"))?.path
            == "clusters[0].idleTimeout")
    }
}
