import Foundation
import Logging
import MeshConfig
import GRPCCore
import MeshEtcd
import Synchronization

/// The control plane's state in etcd (v3 API), shared by every replica
/// started with the same `--store etcd://...`: each serves its own sidecars
/// and follows the others' changes through a watch.
///
/// Keys, under the prefix (default `/swiftmesh/`):
/// - `instances/<service>/<address>/<port>`: an instance as JSON. A
///   sidecar's instance lives on the lease of the replica its sidecar is
///   connected to, renewed three times per TTL: when that replica dies its
///   instances go one TTL later, unless their sidecars have reconnected to
///   another replica, which writes them on its own lease.
///   Heartbeats are not written; health changes are.
/// - `resources/<kind>/<name>`: a resource's spec as canonical JSON, and
///   `resource-services/<kind>/<service>`: the name of the one resource of
///   that kind the service has, checked and written with it.
/// - `join-tokens/<sha-256>`: a join token's service and expiry, on a lease
///   of the token's lifetime.
/// - `identity`: the CA's root and key and the admin token, made by the
///   first replica to start and read by the others (`sharedIdentity`).
public final class EtcdStore: ControlPlaneStore {
    public let client: EtcdClient
    public let prefix: String
    private let logger: Logger
    /// This replica's lease; 0 until its first sidecar registers, and after one ran out.
    private let lease = Mutex<Int64>(0)
    /// Every lease this replica was granted: a write of its own on one
    /// that ran out may still come back through the watch.
    private let ownLeases = Mutex<Set<Int64>>([])
    /// The control plane `follow` serves, told when the lease runs out.
    private let following = Mutex<ControlPlane?>(nil)
    /// How long a dead replica's instances outlive it: long enough for its
    /// sidecars to notice and reconnect to another replica first.
    private let leaseTTLSeconds: Int64
    /// The revision `load` read at: the watch starts after it.
    private let loadedRevision = Mutex<Int64>(0)
    private let pendingWrites: AsyncStream<InstanceChange>
    private let writes: AsyncStream<InstanceChange>.Continuation

    public static let defaultPrefix = "/swiftmesh/"
    /// Longer than a sidecar takes to notice a control plane that vanished
    /// without closing its connection (15 s) and reconnect.
    public static let defaultLeaseTTLSeconds: Int64 = 20

    public init(
        endpoints: [HostPort], prefix: String = EtcdStore.defaultPrefix,
        leaseTTLSeconds: Int64 = EtcdStore.defaultLeaseTTLSeconds, logger: Logger
    ) throws {
        client = try EtcdClient(endpoints: endpoints)
        self.leaseTTLSeconds = leaseTTLSeconds
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.logger = logger
        (pendingWrites, writes) = AsyncStream.makeStream()
    }

    /// Keeps the connections to etcd until cancelled; calls need it running.
    public func runConnections() async throws {
        try await client.run()
    }

    // MARK: ControlPlaneStore

    public func load() async throws -> StoredState {
        let (keyValues, revision) = try await client.keys(prefix: prefix)
        var state = StoredState(ownedByReplicas: true)
        for keyValue in keyValues {
            switch try event(.put(keyValue), ownLeases: []) {
            case .instancePut(let stored, _)?: state.instances.append(stored)
            case .resourcePut(let resource)?: state.resources.append(resource)
            default: break
            }
        }
        loadedRevision.withLock { $0 = revision }
        return state
    }

    /// Writes the resources with, for each, the key that says which
    /// resource of its kind its service has, in one transaction that holds
    /// only if none of them changed since read: so two replicas applying two
    /// resources of one kind for one service cannot both succeed.
    public func saveResources(_ resources: [MeshResource]) async throws {
        for _ in 0..<5 {
            let keys = resources.flatMap { [resourceKey(kind: $0.kind.rawValue, name: $0.name), serviceKey(of: $0)] }
            let reads = try await client.read(keys)
            var puts: [String: Data] = [:]
            var deletes: Set<String> = []
            for resource in resources {
                let slot = serviceKey(of: resource)
                if let holder = reads[slot]?.value.map({ String(decoding: $0, as: UTF8.self) }), holder != resource.name {
                    throw ResourceConflict(kind: resource.kind, service: resource.service, holder: holder)
                }
                let key = resourceKey(kind: resource.kind.rawValue, name: resource.name)
                // One that moves to another service frees its old service's slot.
                if let old = reads[key]?.value,
                   let previous = try? StoredResource.decode(
                    kind: resource.kind.rawValue, name: resource.name, specJSON: String(decoding: old, as: UTF8.self)),
                   previous.service != resource.service {
                    deletes.insert(serviceKey(of: previous))
                }
                puts[key] = Data(resource.specJSON.utf8)
                puts[slot] = Data(resource.name.utf8)
            }
            let written = try await client.write(
                puts: puts.map { ($0.key, $0.value) }, deletes: deletes.subtracting(puts.keys).sorted(), ifUnchanged: reads)
            if written { return }
        }
        throw ResourceConflict(kind: resources[0].kind, service: resources[0].service, holder: nil)
    }

    public func deleteResource(kind: MeshResource.Kind, name: String) async throws {
        let key = resourceKey(kind: kind.rawValue, name: name)
        for _ in 0..<5 {
            guard let stored = try await client.read([key])[key]?.value else { return }
            let resource = try StoredResource.decode(kind: kind.rawValue, name: name, specJSON: String(decoding: stored, as: UTF8.self))
            let slot = serviceKey(of: resource)
            let reads = try await client.read([key, slot])
            let holdsSlot = reads[slot]?.value.map { String(decoding: $0, as: UTF8.self) } == name
            if try await client.write(puts: [], deletes: holdsSlot ? [key, slot] : [key], ifUnchanged: reads) { return }
        }
        throw ResourceConflict(kind: kind, service: nil, holder: nil)
    }

    public func record(_ change: InstanceChange) {
        writes.yield(change)
    }

    public func saveJoinToken(digest: String, service: String, createdAt: Date, expiresAt: Date) async throws {
        let token = StoredJoinToken(
            service: service, createdAt: createdAt.timeIntervalSince1970, expiresAt: expiresAt.timeIntervalSince1970)
        // On a lease of the token's lifetime, so that etcd drops it when it
        // has expired (the expiry is checked on every use all the same).
        let lease = try await client.grantLease(ttlSeconds: max(1, Int64(expiresAt.timeIntervalSince(createdAt).rounded(.up))))
        try await client.put(prefix + "join-tokens/" + digest, try JSONEncoder().encode(token), lease: lease)
    }

    public func joinToken(digest: String) async throws -> (service: String, expiresAt: Date)? {
        guard let found = try await client.value(of: prefix + "join-tokens/" + digest) else { return nil }
        let token = try JSONDecoder().decode(StoredJoinToken.self, from: found.value)
        return (token.service, Date(timeIntervalSince1970: token.expiresAt))
    }

    /// Writes this replica's instance changes in order, keeps its lease
    /// alive, and hands `controlPlane` what the other replicas change, until cancelled.
    public func follow(_ controlPlane: ControlPlane) async throws {
        following.withLock { $0 = controlPlane }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.writeInstances() }
            group.addTask { await self.keepLeaseAlive() }
            group.addTask { try await self.watch(controlPlane) }
            try await group.next()
            group.cancelAll()
        }
    }

    // MARK: The identity every replica shares

    /// The CA root, its key and the admin token: those in etcd, or `make()`'s
    /// when there are none yet (the first replica's; a replica that loses
    /// the race to write them takes the winner's).
    public func sharedIdentity(make: () throws -> SharedIdentity) async throws -> SharedIdentity {
        let proposed = try JSONEncoder().encode(try make())
        let stored = try await client.create(prefix + "identity", proposed)
        return try JSONDecoder().decode(SharedIdentity.self, from: stored)
    }

    // MARK: Background work

    private func writeInstances() async {
        for await change in pendingWrites {
            var failures = 0
            var lastReport = ContinuousClock.now
            while !Task.isCancelled {
                do {
                    try await write(change)
                    break
                } catch {
                    failures += 1
                    // Said at the first failure and every 10 s after: the
                    // changes behind this one wait for it.
                    if failures == 1 || ContinuousClock.now - lastReport > .seconds(10) {
                        lastReport = ContinuousClock.now
                        logger.warning("etcd does not take an instance change; trying again, later changes wait", metadata: [
                            "error": "\(error)", "attempts": "\(failures)",
                        ])
                    }
                    try? await Task.sleep(for: .milliseconds(min(1000, 100 * failures)))
                }
            }
            if failures > 0 { logger.info("etcd took the instance change after \(failures) failed attempts") }
        }
    }

    private func write(_ change: InstanceChange) async throws {
        switch change {
        case .put(let stored), .restore(let stored):
            // A sidecar's instance lives on this replica's lease; one outside the mesh on none.
            var onLease: Int64 = 0
            if stored.sidecarID != nil {
                onLease = try await currentLease()
            }
            let key = instanceKey(stored.instance.service, stored.instance.key)
            let value = try JSONEncoder().encode(StoredInstanceJSON(stored))
            do {
                if case .restore = change {
                    try await client.create(key, value, lease: onLease)
                } else {
                    try await client.put(key, value, lease: onLease)
                }
            } catch let error as RPCError where error.code == .notFound && onLease != 0 {
                // "requested lease not found": it ran out before the renewal noticed.
                await leaseRanOut(onLease)
                throw error
            }
        case .remove(let service, let key, let registeredHere):
            let ownLease = lease.withLock { $0 }
            if registeredHere {
                // Only while it is on this replica's lease: another replica
                // may hold it now. With no lease, it went with the last one.
                guard ownLease != 0 else { return }
                try await client.delete(instanceKey(service, key), onlyOnLease: ownLease)
            } else {
                try await client.delete(instanceKey(service, key))
            }
        }
    }

    private func currentLease() async throws -> Int64 {
        if let granted = lease.withLock({ $0 == 0 ? nil : $0 }) { return granted }
        let granted = try await client.grantLease(ttlSeconds: leaseTTLSeconds)
        ownLeases.withLock { _ = $0.insert(granted) }
        lease.withLock { $0 = granted }
        logger.info("etcd lease granted for this replica's instances", metadata: [
            "lease": "\(granted)", "ttl": "\(leaseTTLSeconds)s",
        ])
        return granted
    }

    /// Renews the lease three times per TTL, and half a second after a
    /// failed renewal.
    private func keepLeaseAlive() async {
        var renewed = true
        while !Task.isCancelled {
            try? await Task.sleep(for: renewed ? .seconds(leaseTTLSeconds) / 3 : .milliseconds(500))
            let current = lease.withLock { $0 }
            guard current != 0 else { continue }
            do {
                renewed = true
                if try await client.keepAlive(lease: current) > 0 { continue }
                await leaseRanOut(current)
            } catch {
                renewed = false
                logger.warning("could not renew this replica's etcd lease", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A lease that expired anyway (etcd unreachable for longer than its
    /// TTL) took this replica's instances with it: the next write gets a
    /// new one, and they are written again, except where another replica
    /// holds them now.
    private func leaseRanOut(_ lost: Int64) async {
        let noticedFirst = lease.withLock { current in
            guard current == lost else { return false }
            current = 0
            return true
        }
        guard noticedFirst else { return }
        logger.warning("this replica's etcd lease ran out; its instances are written again on a new one")
        await following.withLock { $0 }?.recordOwnedInstancesAgain()
    }

    private func watch(_ controlPlane: ControlPlane) async throws {
        var from = loadedRevision.withLock { $0 } + 1
        while !Task.isCancelled {
            do {
                try await client.watch(prefix: prefix, from: from) { [self] changes, _ in
                    let leases = ownLeases.withLock { $0 }
                    var events: [StoreEvent] = []
                    for change in changes {
                        do {
                            if let event = try event(change, ownLeases: leases) { events.append(event) }
                        } catch {
                            logger.error("ignored a change in etcd that cannot be read", metadata: ["error": "\(error)"])
                        }
                    }
                    if !events.isEmpty { await controlPlane.storeChanged(events) }
                }
                return
            } catch EtcdClient.WatchEnd.compacted {
                // The history since the last event is gone: start again from everything.
                logger.warning("the etcd watch fell behind a compaction; reading the whole state again")
                while !Task.isCancelled {
                    do {
                        let state = try await load()
                        await controlPlane.resync(state)
                        break
                    } catch {
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                from = loadedRevision.withLock { $0 } + 1
            }
        }
    }

    // MARK: Keys and values

    private func instanceKey(_ service: String, _ key: RegisteredInstance.Key) -> String {
        "\(prefix)instances/\(service)/\(key.address)/\(key.port)"
    }

    private func resourceKey(kind: String, name: String) -> String {
        "\(prefix)resources/\(kind)/\(name)"
    }

    /// Which resource of its kind the resource's service has (its name).
    private func serviceKey(of resource: MeshResource) -> String {
        "\(prefix)resource-services/\(resource.kind.rawValue)/\(resource.service)"
    }

    /// What a change of one key means to the control plane; nil for keys it does not follow.
    private func event(_ change: EtcdClient.Event, ownLeases: Set<Int64>) throws -> StoreEvent? {
        let key: String
        switch change {
        case .put(let keyValue): key = keyValue.key
        case .delete(let deleted): key = deleted
        }
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, change) {
        case ("instances", .put(let keyValue)) where parts.count == 4:
            let stored = try JSONDecoder().decode(StoredInstanceJSON.self, from: keyValue.value).stored
            return .instancePut(stored, registeredHere: keyValue.lease != 0 && ownLeases.contains(keyValue.lease))
        case ("instances", .delete) where parts.count == 4:
            guard let port = Int(parts[3]) else { return nil }
            return .instanceRemoved(service: parts[1], key: RegisteredInstance.Key(address: parts[2], port: port))
        case ("resources", .put(let keyValue)) where parts.count == 3:
            return .resourcePut(try StoredResource.decode(
                kind: parts[1], name: parts[2], specJSON: String(decoding: keyValue.value, as: UTF8.self)))
        case ("resources", .delete) where parts.count == 3:
            guard let kind = MeshResource.Kind(rawValue: parts[1]) else { return nil }
            return .resourceDeleted(kind: kind, name: parts[2])
        default:
            return nil
        }
    }
}

/// Another replica stored a resource of this kind for the service first
/// (`holder`; nil: the resources kept changing while this write was tried).
public struct ResourceConflict: Error, CustomStringConvertible {
    public var kind: MeshResource.Kind
    public var service: String?
    public var holder: String?

    public var description: String {
        guard let holder, let service else {
            return "the resources kept changing while they were written; apply again"
        }
        return "\(service) already has \(kind.rawValue) \(holder) (applied through another control-plane replica); "
            + "a service has one \(kind.rawValue), so change that one or delete it first"
    }
}

/// A change another replica (or this one) made to the shared state.
public enum StoreEvent: Sendable, Equatable {
    /// `registeredHere`: this replica's own write, coming back through the watch.
    case instancePut(Registry.StoredInstance, registeredHere: Bool)
    case instanceRemoved(service: String, key: RegisteredInstance.Key)
    case resourcePut(MeshResource)
    case resourceDeleted(kind: MeshResource.Kind, name: String)
}

/// The CA root, its key and the admin token, as replicas share them.
public struct SharedIdentity: Codable, Sendable {
    public var rootCertificatePEM: String
    public var rootKeyPEM: String
    public var adminToken: String

    public init(rootCertificatePEM: String, rootKeyPEM: String, adminToken: String) {
        self.rootCertificatePEM = rootCertificatePEM
        self.rootKeyPEM = rootKeyPEM
        self.adminToken = adminToken
    }
}

private struct StoredJoinToken: Codable {
    var service: String
    var createdAt: Double
    var expiresAt: Double
}

/// An instance as etcd keeps it.
private struct StoredInstanceJSON: Codable {
    var service: String
    var address: String
    var port: Int
    var `protocol`: String
    var labels: [String: String]
    var sidecarID: String?
    var healthy: Bool

    init(_ stored: Registry.StoredInstance) {
        service = stored.instance.service
        address = stored.instance.key.address
        port = stored.instance.key.port
        `protocol` = stored.instance.protocolName
        labels = stored.instance.labels
        sidecarID = stored.sidecarID
        healthy = stored.healthy
    }

    var stored: Registry.StoredInstance {
        Registry.StoredInstance(
            instance: RegisteredInstance(service: service, address: address, port: port, protocolName: `protocol`, labels: labels),
            sidecarID: sidecarID, healthy: healthy)
    }
}
