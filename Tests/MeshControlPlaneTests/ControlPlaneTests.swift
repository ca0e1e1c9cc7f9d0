import Foundation
import Logging
import MeshAPI
import MeshConfig
import Synchronization
import Testing

@testable import MeshControlPlane

/// A clock the test moves by hand.
private final class TestClock: Sendable {
    private let millis = Mutex<Int64>(1_000_000)

    var now: Int64 { millis.withLock { $0 } }

    func advance(by delta: Int64) {
        millis.withLock { $0 += delta }
    }
}

/// One sidecar's end of the push: what the control plane sent it.
private struct Subscriber {
    let token: UInt64
    var snapshots: AsyncStream<Swiftmesh_V1_Snapshot>.Iterator

    /// The next snapshot: (version, instance addresses of each upstream).
    mutating func next() async -> (UInt64, [String: [String]])? {
        guard let snapshot = await snapshots.next() else { return nil }
        return (snapshot.version, Dictionary(uniqueKeysWithValues: snapshot.upstreams.map { upstream in
            (upstream.service, upstream.instances.map { "\($0.address):\($0.port)" })
        }))
    }
}

@Suite("ControlPlane")
struct ControlPlaneTests {
    private let clock = TestClock()

    private func controlPlane(store: SQLiteStore? = nil) throws -> ControlPlane {
        let clock = self.clock
        return ControlPlane(
            settings: .init(heartbeatIntervalMillis: 1000, restartGraceMillis: 15_000), store: store,
            state: try store?.loadNow() ?? StoredState(), logger: Logger(label: "test"), nowMillis: { clock.now })
    }

    private func hello(_ id: String, service: String?, address: String = "10.0.0.1", upstreams: [String] = []) -> Swiftmesh_V1_Hello {
        .with { hello in
            hello.sidecarID = id
            if let service {
                hello.instance = .with {
                    $0.service = service
                    $0.address = address
                    $0.port = 15001
                    $0.protocol = "http2"
                }
            }
            hello.upstreams = upstreams
        }
    }

    private func open(_ controlPlane: ControlPlane, _ hello: Swiftmesh_V1_Hello) async throws -> Subscriber {
        let (stream, sink) = AsyncStream.makeStream(of: Swiftmesh_V1_Snapshot.self)
        let token = try await controlPlane.open(hello, sink: sink)
        return Subscriber(token: token, snapshots: stream.makeAsyncIterator())
    }

    @Test func callersGetEveryChangeOfTheServicesTheyCall() async throws {
        let controlPlane = try controlPlane()
        var gateway = try await open(controlPlane, hello("gw", service: nil, upstreams: ["user"]))
        #expect(await gateway.next()?.1 == ["user": []], "the first snapshot comes at once, even when empty")

        let user1 = try await open(controlPlane, hello("u1", service: "user", address: "10.0.0.1"))
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.1:15001"]])
        _ = try await open(controlPlane, hello("u2", service: "user", address: "10.0.0.2"))
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.1:15001", "10.0.0.2:15001"]])

        // A sidecar that ends its stream deregisters at once.
        await controlPlane.close(sidecarID: "u1", token: user1.token, deregister: true)
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.2:15001"]])
        #expect(await controlPlane.instances(of: "user").map(\.key.address) == ["10.0.0.2"])
    }

    @Test func aLostStreamKeepsTheInstanceUntilItsHeartbeatsAreMissed() async throws {
        let controlPlane = try controlPlane()
        var gateway = try await open(controlPlane, hello("gw", service: nil, upstreams: ["user"]))
        _ = await gateway.next()
        let user1 = try await open(controlPlane, hello("u1", service: "user"))
        _ = await gateway.next()
        let user2 = try await open(controlPlane, hello("u2", service: "user", address: "10.0.0.2"))
        _ = await gateway.next()

        await controlPlane.close(sidecarID: "u1", token: user1.token, deregister: false)
        clock.advance(by: 2000)
        await controlPlane.heartbeat(sidecarID: "u2", token: user2.token, healthy: true)
        clock.advance(by: 1000)
        await controlPlane.expireStale()
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.2:15001"]], "u1 missed three heartbeats; u2 did not")
    }

    @Test func anInstanceWhoseAppIsUnhealthyIsLeftOutOfSnapshots() async throws {
        let controlPlane = try controlPlane()
        var gateway = try await open(controlPlane, hello("gw", service: nil, upstreams: ["user"]))
        _ = await gateway.next()
        let user1 = try await open(controlPlane, hello("u1", service: "user"))
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.1:15001"]])
        await controlPlane.heartbeat(sidecarID: "u1", token: user1.token, healthy: false)
        #expect(await gateway.next()?.1 == ["user": []])
        #expect(await controlPlane.storedInstances(of: "user").map(\.healthy) == [false], "still registered")
        await controlPlane.heartbeat(sidecarID: "u1", token: user1.token, healthy: true)
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.1:15001"]])
    }

    @Test func aReconnectedSidecarIsNotEndedByItsOldStream() async throws {
        let controlPlane = try controlPlane()
        let first = try await open(controlPlane, hello("u1", service: "user"))
        let second = try await open(controlPlane, hello("u1", service: "user"))
        await controlPlane.close(sidecarID: "u1", token: first.token, deregister: true)
        #expect(await controlPlane.instances(of: "user").count == 1, "the old stream's end belongs to no live session")
        #expect(await controlPlane.subscribers["u1"] != nil)
        await controlPlane.close(sidecarID: "u1", token: second.token, deregister: true)
        #expect(await controlPlane.instances(of: "user").isEmpty)
    }

    @Test func acksAndRefusalsAreKeptPerSidecar() async throws {
        let controlPlane = try controlPlane()
        var gateway = try await open(controlPlane, hello("gw", service: nil, upstreams: ["user"]))
        let version = try #require(await gateway.next()?.0)
        await controlPlane.refused(sidecarID: "gw", token: gateway.token, version: version, reason: "upstreams[0]: bad")
        #expect(await controlPlane.subscribers["gw"]?.refusal == .init(version: version, reason: "upstreams[0]: bad"))
        await controlPlane.acknowledged(sidecarID: "gw", token: gateway.token + 1, version: version)
        #expect(await controlPlane.subscribers["gw"]?.ackedVersion == nil, "another session's ack is ignored")
    }

    @Test func aHelloThatCannotBeServedIsRefusedWithTheField() async throws {
        let controlPlane = try controlPlane()
        let (_, sink) = AsyncStream.makeStream(of: Swiftmesh_V1_Snapshot.self)
        var bad = hello("u1", service: "user")
        bad.instance.address = "user.local"
        await #expect(throws: HelloRefusal.self) { try await controlPlane.open(bad, sink: sink) }
        do {
            _ = try await controlPlane.open(hello("u1", service: "User_1"), sink: sink)
            Issue.record("an invalid service name was accepted")
        } catch {
            #expect(error.description.hasPrefix("instance.service: \"User_1\" is not a service name"))
        }
        do {
            _ = try await controlPlane.open(hello("gw", service: nil, upstreams: ["ok", ""]), sink: sink)
            Issue.record("an empty upstream name was accepted")
        } catch {
            #expect(error.description == "upstreams[1]: a service needs a name")
        }
        do {
            _ = try await controlPlane.open(hello("gw", service: nil, upstreams: ["user", "alive", "user"]), sink: sink)
            Issue.record("an upstream named twice was accepted")
        } catch {
            #expect(error.description == "upstreams[2]: \"user\" is named twice; name each service once")
        }
        #expect(await controlPlane.services.isEmpty)
    }

    @Test func aRestartedControlPlaneStartsFromItsStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftmesh-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let before = try controlPlane(store: SQLiteStore(directory: directory))
        _ = try await open(before, hello("u1", service: "user", address: "10.0.0.1"))
        _ = try await open(before, hello("a1", service: "alive", address: "10.0.0.3"))

        let after = try controlPlane(store: SQLiteStore(directory: directory))
        #expect(await after.services == ["alive", "user"])
        clock.advance(by: 14_000)
        await after.expireStale()
        #expect(await after.services == ["alive", "user"], "sidecars have the restart grace to come back")
        clock.advance(by: 1_000)
        await after.expireStale()
        #expect(await after.services.isEmpty)
        let reopened = try SQLiteStore(directory: directory)
        #expect(try reopened.loadNow().instances.isEmpty, "expiry reached the store too")
    }

    // MARK: A store shared by replicas

    private func replica(_ store: RecordingStore, state: StoredState = StoredState(ownedByReplicas: true)) -> ControlPlane {
        let clock = self.clock
        return ControlPlane(
            settings: .init(heartbeatIntervalMillis: 1000, restartGraceMillis: 15_000), store: store, state: state,
            logger: Logger(label: "test"), nowMillis: { clock.now })
    }

    private func stored(_ service: String, _ address: String, sidecar: String? = "other") -> Registry.StoredInstance {
        Registry.StoredInstance(
            instance: RegisteredInstance(service: service, address: address, port: 15001, protocolName: "http2"), sidecarID: sidecar)
    }

    @Test func anotherReplicasInstancesReachThisReplicasSidecarsAndAreNotWrittenBack() async throws {
        let store = RecordingStore()
        let controlPlane = replica(store)
        var gateway = try await open(controlPlane, hello("gw", service: nil, upstreams: ["user"]))
        #expect(await gateway.next()?.1 == ["user": []])

        await controlPlane.storeChanged([.instancePut(stored("user", "10.0.0.7"), registeredHere: false)])
        #expect(await gateway.next()?.1 == ["user": ["10.0.0.7:15001"]])
        clock.advance(by: 60_000)
        await controlPlane.expireStale()
        #expect(await controlPlane.instances(of: "user").count == 1, "its own replica keeps it alive, not this one")
        await controlPlane.storeChanged([.instanceRemoved(service: "user", key: .init(address: "10.0.0.7", port: 15001))])
        #expect(await gateway.next()?.1 == ["user": []])
        #expect(store.changes.isEmpty)
    }

    @Test func thisReplicasSidecarsAreWrittenAndTheirEchoIgnored() async throws {
        let store = RecordingStore()
        let controlPlane = replica(store)
        let user = try await open(controlPlane, hello("u1", service: "user", address: "10.0.0.1"))
        #expect(store.changes == [.put(stored("user", "10.0.0.1", sidecar: "u1"))])
        await controlPlane.storeChanged([.instancePut(stored("user", "10.0.0.1", sidecar: "u1"), registeredHere: true)])
        // The lease ran out, or another replica deregistered it: etcd dropped
        // the key, but the sidecar is still here, so it is written again.
        await controlPlane.storeChanged([.instanceRemoved(service: "user", key: .init(address: "10.0.0.1", port: 15001))])
        #expect(await controlPlane.instances(of: "user").count == 1)
        #expect(store.changes.count == 2 && store.changes.last == .put(stored("user", "10.0.0.1", sidecar: "u1")))
        await controlPlane.recordOwnedInstancesAgain()
        #expect(store.changes.count == 3 && store.changes.last == .restore(stored("user", "10.0.0.1", sidecar: "u1")))

        await controlPlane.close(sidecarID: "u1", token: user.token, deregister: true)
        #expect(store.changes.last == .remove(service: "user", key: .init(address: "10.0.0.1", port: 15001), registeredHere: true))
    }

    @Test func anInstanceAnotherReplicaTookOverIsNotExpiredHere() async throws {
        let store = RecordingStore()
        let controlPlane = replica(store)
        _ = try await open(controlPlane, hello("u1", service: "user", address: "10.0.0.1"))
        // The sidecar reconnected to another replica, which wrote it on its lease.
        await controlPlane.storeChanged([.instancePut(stored("user", "10.0.0.1", sidecar: "u1"), registeredHere: false)])
        clock.advance(by: 60_000)
        await controlPlane.expireStale()
        #expect(await controlPlane.instances(of: "user").count == 1)
        #expect(store.changes.count == 1, "nothing removed, nothing written again")
    }

    @Test func aSidecarThatReconnectsHereHasItsInstanceWrittenOnThisReplicasLease() async throws {
        let store = RecordingStore()
        let controlPlane = replica(store, state: StoredState(
            instances: [stored("user", "10.0.0.1", sidecar: "u1")], ownedByReplicas: true))
        _ = try await open(controlPlane, hello("u1", service: "user", address: "10.0.0.1"))
        #expect(store.changes == [.put(stored("user", "10.0.0.1", sidecar: "u1"))], "unchanged, but now this replica's")
    }

    @Test func resourcesAppliedThroughAnotherReplicaAreApplied() async throws {
        let controlPlane = replica(RecordingStore())
        let policy = MeshResource(name: "user", spec: .servicePolicy(ServicePolicy(service: "user", settings: .init(loadBalancing: .random), routes: [])))
        await controlPlane.storeChanged([.resourcePut(policy)])
        #expect(await controlPlane.resources(of: .servicePolicy) == [policy])
        await controlPlane.storeChanged([.resourceDeleted(kind: .servicePolicy, name: "user")])
        #expect(await controlPlane.resources(of: .servicePolicy).isEmpty)
    }

    @Test func aResyncReplacesWhatOtherReplicasHoldAndKeepsThisOnesOwn() async throws {
        let controlPlane = replica(RecordingStore(), state: StoredState(instances: [stored("user", "10.0.0.7")], ownedByReplicas: true))
        _ = try await open(controlPlane, hello("u1", service: "user", address: "10.0.0.1"))
        await controlPlane.resync(StoredState(instances: [stored("user", "10.0.0.8")], ownedByReplicas: true))
        #expect(await controlPlane.instances(of: "user").map(\.key.address) == ["10.0.0.1", "10.0.0.8"])
    }
}

/// A store that only remembers the instance changes recorded in it.
private final class RecordingStore: ControlPlaneStore {
    private let recorded = Mutex<[InstanceChange]>([])

    var changes: [InstanceChange] { recorded.withLock { $0 } }

    func load() async throws -> StoredState { StoredState(ownedByReplicas: true) }
    func saveResources(_ resources: [MeshResource]) async throws {}
    func deleteResource(kind: MeshResource.Kind, name: String) async throws {}
    func record(_ change: InstanceChange) { recorded.withLock { $0.append(change) } }
    func saveJoinToken(digest: String, service: String, createdAt: Date, expiresAt: Date) async throws {}
    func joinToken(digest: String) async throws -> (service: String, expiresAt: Date)? { nil }
}
