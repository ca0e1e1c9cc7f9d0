import Testing

@testable import MeshControlPlane

@Suite("Registry")
struct RegistryTests {
    private func instance(_ service: String, _ address: String, port: Int = 15001, version: String = "v1") -> RegisteredInstance {
        RegisteredInstance(service: service, address: address, port: port, protocolName: "http2", labels: ["version": version])
    }

    @Test func registeringChangesTheServiceVersionOnlyWhenTheInstanceChanges() {
        var registry = Registry()
        let first = registry.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 0)
        #expect(first)
        #expect(registry.version(of: "user") == 1)
        // The same instance again (a reconnecting sidecar): no change to push.
        let again = registry.register(instance("user", "10.0.0.1"), sidecarID: "s1b", ttlMillis: 3000, nowMillis: 10)
        #expect(!again)
        // New labels are a change.
        let relabelled = registry.register(instance("user", "10.0.0.1", version: "v2"), sidecarID: "s1b", ttlMillis: 3000, nowMillis: 20)
        #expect(relabelled)
        #expect(registry.version(of: "user") == 2)
        #expect(registry.version(of: "alive") == 0)
        #expect(registry.instances(of: "user").map(\.labels) == [["version": "v2"]])
    }

    @Test func instancesExpireUnlessTheirSidecarBeats() {
        var registry = Registry()
        registry.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 0)
        registry.register(instance("user", "10.0.0.2"), sidecarID: "s2", ttlMillis: 3000, nowMillis: 0)
        registry.registerExternal(instance("billing", "192.0.2.9", port: 443))
        let beat = registry.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 2000)
        #expect(!beat, "a heartbeat is no change")
        let early = registry.expire(nowMillis: 2999)
        #expect(early.isEmpty)
        let firstExpiry = registry.expire(nowMillis: 3000)
        #expect(firstExpiry == ["user"])
        #expect(registry.instances(of: "user").map(\.key.address) == ["10.0.0.1"])
        let secondExpiry = registry.expire(nowMillis: 5000)
        #expect(secondExpiry == ["user"])
        #expect(registry.services == ["billing"], "external instances never expire")
        #expect(registry.version(of: "user") == 4, "two registrations, two expiries")
    }

    @Test func deregisteringRemovesEverythingOfTheSidecar() {
        var registry = Registry()
        registry.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 0)
        registry.register(instance("alive", "10.0.0.1", port: 15002), sidecarID: "s1", ttlMillis: 3000, nowMillis: 0)
        registry.register(instance("user", "10.0.0.2"), sidecarID: "s2", ttlMillis: 3000, nowMillis: 0)
        let changed = registry.deregister(sidecarID: "s1")
        #expect(changed == ["user", "alive"])
        #expect(registry.services == ["user"])
        let nothingLeft = registry.deregister(sidecarID: "s1")
        #expect(nothingLeft.isEmpty)
    }

    @Test func oneInstanceCanBeRemovedByItsAddress() {
        var registry = Registry()
        registry.registerExternal(instance("billing", "192.0.2.9", port: 443))
        let removed = registry.remove(service: "billing", key: .init(address: "192.0.2.9", port: 443))
        let removedAgain = registry.remove(service: "billing", key: .init(address: "192.0.2.9", port: 443))
        #expect(removed && !removedAgain)
        #expect(registry.services.isEmpty)
    }

    @Test func instancesComeInAddressOrder() {
        var registry = Registry()
        for address in ["10.0.0.3", "10.0.0.1", "10.0.0.2"] {
            registry.registerExternal(instance("user", address))
        }
        #expect(registry.instances(of: "user").map(\.key.address) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    }

    @Test func aRestartedRegistryGivesSidecarsAGracePeriod() {
        var registry = Registry()
        registry.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 0)
        registry.registerExternal(instance("billing", "192.0.2.9", port: 443))
        let stored = registry.services.flatMap { registry.stored(of: $0) }
        var restored = Registry(restoring: stored, graceUntilMillis: 60_000)
        #expect(restored.services == ["billing", "user"])
        #expect(restored.expire(nowMillis: 59_999).isEmpty, "the sidecar has until the grace ends to come back")
        // It came back and beats: its instance lives on past the grace.
        restored.register(instance("user", "10.0.0.1"), sidecarID: "s1", ttlMillis: 3000, nowMillis: 59_000)
        #expect(restored.expire(nowMillis: 61_000).isEmpty)
        #expect(restored.expire(nowMillis: 62_000) == ["user"])
        #expect(restored.services == ["billing"])
    }
}
