import Testing

@testable import MeshControlPlane

@Suite("Subscriptions")
struct SubscriptionsTests {
    @Test func aChangeMakesDueExactlyTheSidecarsThatCallTheService() {
        var inputs: [Subscriptions.Input: UInt64] = [.upstream("user"): 1, .upstream("alive"): 1]
        var subscriptions = Subscriptions()
        subscriptions.subscribe(sidecarID: "gateway", upstreams: ["user", "alive"])
        subscriptions.subscribe(sidecarID: "user-1", upstreams: ["alive"])
        #expect(subscriptions.due { inputs[$0] ?? 0 } == ["gateway", "user-1"], "new subscribers get a first snapshot")
        _ = subscriptions.sending(to: "gateway") { inputs[$0] ?? 0 }
        _ = subscriptions.sending(to: "user-1") { inputs[$0] ?? 0 }
        #expect(subscriptions.due { inputs[$0] ?? 0 }.isEmpty)

        inputs[.upstream("user")] = 2
        #expect(subscriptions.due { inputs[$0] ?? 0 } == ["gateway"])
        inputs[.upstream("alive")] = 2
        #expect(subscriptions.due { inputs[$0] ?? 0 } == ["gateway", "user-1"])
    }

    @Test func anAuthorizationChangeMakesDueTheSidecarsOfItsService() {
        var inputs: [Subscriptions.Input: UInt64] = [.upstream("user"): 1, .authorization("user"): 1]
        var subscriptions = Subscriptions()
        subscriptions.subscribe(sidecarID: "gateway", upstreams: ["user"], service: "gateway")
        subscriptions.subscribe(sidecarID: "user-1", upstreams: [], service: "user")
        _ = subscriptions.sending(to: "gateway") { inputs[$0] ?? 0 }
        _ = subscriptions.sending(to: "user-1") { inputs[$0] ?? 0 }
        inputs[.authorization("user")] = 2
        #expect(subscriptions.due { inputs[$0] ?? 0 } == ["user-1"], "callers of user are not concerned")
    }

    @Test func versionsRiseAcrossSubscribersAndAcksClearRefusals() {
        var subscriptions = Subscriptions()
        subscriptions.subscribe(sidecarID: "a", upstreams: ["user"])
        subscriptions.subscribe(sidecarID: "b", upstreams: ["user"])
        let first = subscriptions.sending(to: "a") { _ in 1 }
        let second = subscriptions.sending(to: "b") { _ in 1 }
        let third = subscriptions.sending(to: "a") { _ in 2 }
        #expect([first, second, third] == [1, 2, 3])
        #expect(subscriptions.sending(to: "nobody") { _ in 1 } == nil)

        subscriptions.refused(sidecarID: "a", version: 3, reason: "routes[0].timeout: expected a duration")
        #expect(subscriptions.subscribers["a"]?.refusal?.version == 3)
        subscriptions.acknowledged(sidecarID: "a", version: 1)
        #expect(subscriptions.subscribers["a"]?.refusal != nil, "an older ack does not clear a newer refusal")
        _ = subscriptions.sending(to: "a") { _ in 3 }
        subscriptions.acknowledged(sidecarID: "a", version: 4)
        #expect(subscriptions.subscribers["a"]?.refusal == nil)
        #expect(subscriptions.subscribers["a"]?.ackedVersion == 4)
        subscriptions.acknowledged(sidecarID: "a", version: 99)
        #expect(subscriptions.subscribers["a"]?.ackedVersion == 4, "a version never sent is ignored")
    }

    @Test func aReconnectingSidecarStartsOver() {
        var subscriptions = Subscriptions()
        subscriptions.subscribe(sidecarID: "a", upstreams: ["user"])
        _ = subscriptions.sending(to: "a") { _ in 1 }
        subscriptions.subscribe(sidecarID: "a", upstreams: ["user", "alive"])
        #expect(subscriptions.due { _ in 1 } == ["a"])
        subscriptions.unsubscribe(sidecarID: "a")
        #expect(subscriptions.due { _ in 1 }.isEmpty)
    }
}
