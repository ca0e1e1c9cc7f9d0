import Foundation
import Logging
import MeshAPI
import MeshConfig

/// The control plane's state and the one place that changes it: the registry
/// of services and instances, the resources applied (ServicePolicy), the
/// sidecars subscribed and what each was sent. Every change persists to the
/// store and pushes a new snapshot to exactly the sidecars it concerns.
public actor ControlPlane {
    public struct Settings: Sendable {
        /// How often sidecars send a heartbeat; an instance whose sidecar is
        /// silent for three of them is removed.
        public var heartbeatIntervalMillis: Int64
        /// After a restart, how long the instances of sidecars that have not
        /// reconnected yet are kept.
        public var restartGraceMillis: Int64

        public static let defaultHeartbeatIntervalMillis: Int64 = 1000
        public static let defaultRestartGraceMillis: Int64 = 15_000

        public init(
            heartbeatIntervalMillis: Int64 = Settings.defaultHeartbeatIntervalMillis,
            restartGraceMillis: Int64 = Settings.defaultRestartGraceMillis
        ) {
            self.heartbeatIntervalMillis = heartbeatIntervalMillis
            self.restartGraceMillis = restartGraceMillis
        }

        var ttlMillis: Int64 { 3 * heartbeatIntervalMillis }
    }

    /// One open Subscribe stream. A sidecar that reconnects gets a new
    /// session; the token tells a stale stream's end from the live one's.
    private struct Session {
        var token: UInt64
        var instance: RegisteredInstance?
        var sink: AsyncStream<Swiftmesh_V1_Snapshot>.Continuation
    }

    private let settings: Settings
    private let store: ControlPlaneStore?
    private let logger: Logger
    /// Wall-clock milliseconds: registry expiry must mean the same after a restart.
    private let nowMillis: @Sendable () -> Int64
    private var registry: Registry
    /// Each service's ServicePolicy, by service.
    private var policies: [String: AppliedPolicy] = [:]
    /// Rises with every change of any policy; each service keeps the value of its last change.
    private var policyChanges: UInt64 = 0
    private var policyVersions: [String: UInt64] = [:]
    private var subscriptions = Subscriptions()
    private var sessions: [String: Session] = [:]
    private var lastToken: UInt64 = 0

    public static let wallClockMillis: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Starts from what `store` kept (nothing without a store).
    public init(
        settings: Settings = Settings(), store: ControlPlaneStore?, logger: Logger,
        nowMillis: @escaping @Sendable () -> Int64 = ControlPlane.wallClockMillis
    ) throws {
        self.settings = settings
        self.store = store
        self.logger = logger
        self.nowMillis = nowMillis
        let stored = try store?.instances() ?? []
        let restored = Registry(restoring: stored, graceUntilMillis: nowMillis() + settings.restartGraceMillis)
        registry = restored
        var restoredPolicies: [String: AppliedPolicy] = [:]
        for resource in try store?.resources() ?? [] {
            if case .servicePolicy(let policy) = resource.spec {
                restoredPolicies[policy.service] = AppliedPolicy(name: resource.name, policy: policy)
            }
        }
        policies = restoredPolicies
        if !stored.isEmpty || !restoredPolicies.isEmpty {
            logger.info("state restored from the store", metadata: [
                "instances": "\(stored.count)", "services": "\(restored.services.count)",
                "policies": "\(restoredPolicies.count)",
            ])
        }
    }

    // MARK: Sidecar streams

    /// A sidecar said Hello: registers its instance, subscribes it to its
    /// upstreams and sends its first snapshot to `sink`. Returns the session token.
    func open(_ hello: Swiftmesh_V1_Hello, sink: AsyncStream<Swiftmesh_V1_Snapshot>.Continuation) throws(HelloRefusal) -> UInt64 {
        guard !hello.sidecarID.isEmpty else { throw HelloRefusal("sidecar_id: a sidecar needs an id") }
        for (index, upstream) in hello.upstreams.enumerated() {
            if let problem = ServiceNameSyntax.problem(upstream) {
                throw HelloRefusal("upstreams[\(index)]: \(problem)")
            }
            if hello.upstreams[..<index].contains(upstream) {
                throw HelloRefusal("upstreams[\(index)]: \"\(upstream)\" is named twice; name each service once")
            }
        }
        var instance: RegisteredInstance?
        if hello.hasInstance {
            instance = try RegisteredInstance.from(hello.instance).get()
        }
        lastToken += 1
        sessions[hello.sidecarID]?.sink.finish()
        sessions[hello.sidecarID] = Session(token: lastToken, instance: instance, sink: sink)
        subscriptions.subscribe(sidecarID: hello.sidecarID, upstreams: hello.upstreams)
        logger.info("sidecar subscribed", metadata: [
            "sidecar": "\(hello.sidecarID)", "upstreams": "\(hello.upstreams.joined(separator: ","))",
            "instance": "\(instance.map { "\($0.service)@\($0.key.address):\($0.key.port)" } ?? "none")",
        ])
        if let instance, registry.register(
            instance, sidecarID: hello.sidecarID, ttlMillis: settings.ttlMillis, nowMillis: nowMillis(),
            healthy: hello.health != .unhealthy) {
            instancesChanged([instance.service])
        } else {
            pushDue()
        }
        return lastToken
    }

    /// A heartbeat: the session's instance stays registered (or comes back,
    /// had it expired during a stall), with the health its sidecar found.
    func heartbeat(sidecarID: String, token: UInt64, healthy: Bool) {
        guard let session = sessions[sidecarID], session.token == token, let instance = session.instance else { return }
        let before = registry.isHealthy(service: instance.service, key: instance.key)
        guard registry.register(
            instance, sidecarID: sidecarID, ttlMillis: settings.ttlMillis, nowMillis: nowMillis(), healthy: healthy) else { return }
        if before == nil {
            logger.info("instance registered again by a heartbeat after it expired", metadata: ["sidecar": "\(sidecarID)"])
        } else {
            logger.info(healthy ? "instance healthy again" : "instance unhealthy: its sidecar cannot reach the app; callers stop getting it",
                        metadata: ["sidecar": "\(sidecarID)"])
        }
        instancesChanged([instance.service])
    }

    func acknowledged(sidecarID: String, token: UInt64, version: UInt64) {
        guard sessions[sidecarID]?.token == token else { return }
        subscriptions.acknowledged(sidecarID: sidecarID, version: version)
    }

    func refused(sidecarID: String, token: UInt64, version: UInt64, reason: String) {
        guard sessions[sidecarID]?.token == token else { return }
        subscriptions.refused(sidecarID: sidecarID, version: version, reason: reason)
        logger.warning("sidecar refused a snapshot and keeps its previous one", metadata: [
            "sidecar": "\(sidecarID)", "version": "\(version)", "reason": "\(reason)",
        ])
    }

    /// A stream ended. `deregister`: the sidecar ended it, so its instance
    /// goes now; otherwise (a broken connection, a control-plane shutdown)
    /// the instance stays until its heartbeats have been missing for the TTL.
    func close(sidecarID: String, token: UInt64, deregister: Bool) {
        guard let session = sessions[sidecarID], session.token == token else { return }
        session.sink.finish()
        sessions.removeValue(forKey: sidecarID)
        subscriptions.unsubscribe(sidecarID: sidecarID)
        logger.info(deregister ? "sidecar deregistered" : "sidecar stream lost", metadata: ["sidecar": "\(sidecarID)"])
        if deregister {
            instancesChanged(registry.deregister(sidecarID: sidecarID))
        }
    }

    // MARK: Expiry

    /// Removes the instances whose heartbeats stopped, every half heartbeat
    /// interval, until cancelled.
    public func runExpiry() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(max(1, settings.heartbeatIntervalMillis / 2)))
            expireStale()
        }
    }

    func expireStale() {
        let expired = registry.expire(nowMillis: nowMillis())
        if !expired.isEmpty {
            logger.info("instances expired", metadata: ["services": "\(expired.sorted().joined(separator: ","))"])
            instancesChanged(expired)
        }
    }

    // MARK: Resources

    /// Stores `resources` and pushes them, all or none: a resource that
    /// conflicts with what is stored refuses the whole apply, with the path
    /// of the field at fault (`paths` holds each resource's path in the
    /// applied document). Returns what happened to each.
    public func apply(_ resources: [MeshResource], paths: [String]) throws(ApplyFailure) -> [AppliedResource] {
        var next = policies
        var outcomes: [AppliedResource] = []
        for (resource, path) in zip(resources, paths) {
            guard case .servicePolicy(let policy) = resource.spec else { continue }
            if let holder = next[policy.service], holder.name != resource.name {
                throw .refused(ResourceRefusal(
                    path: path.isEmpty ? "spec.service" : "\(path).spec.service",
                    message: "\(policy.service) already has ServicePolicy \(holder.name); a service has one policy, so change that one or delete it first"))
            }
            let previous = next.first { $0.value.name == resource.name }
            let outcome: AppliedResource.Outcome =
                previous == nil ? .created : previous?.value.policy == policy ? .unchanged : .configured
            if let previous, previous.key != policy.service {
                next.removeValue(forKey: previous.key)
            }
            next[policy.service] = AppliedPolicy(name: resource.name, policy: policy)
            outcomes.append(AppliedResource(kind: resource.kind, name: resource.name, outcome: outcome))
        }
        let changed = Set(next.keys).union(policies.keys).filter { next[$0] != policies[$0] }
        guard !changed.isEmpty else { return outcomes }
        do {
            try store?.saveResources(resources)
        } catch {
            throw .storage("the control plane could not store the resources: \(error)")
        }
        policies = next
        policiesChanged(changed)
        return outcomes
    }

    /// Deletes a resource; false when there is none of that kind and name.
    public func delete(kind: MeshResource.Kind, name: String) throws -> Bool {
        guard let service = policies.first(where: { $0.value.name == name })?.key else { return false }
        try store?.deleteResource(kind: kind, name: name)
        policies.removeValue(forKey: service)
        policiesChanged([service])
        return true
    }

    /// The stored resources of `kind`, by name.
    public func resources(of kind: MeshResource.Kind) -> [MeshResource] {
        policies.values.map { MeshResource(name: $0.name, spec: .servicePolicy($0.policy)) }.sorted { $0.name < $1.name }
    }

    /// The name of the ServicePolicy of `service`, if it has one.
    public func policyName(of service: String) -> String? {
        policies[service]?.name
    }

    // MARK: Queries

    /// Every service with at least one instance, sorted.
    public var services: [String] { registry.services }

    /// A service's instances with who registered them (nil: an external instance).
    public func storedInstances(of service: String) -> [Registry.StoredInstance] {
        registry.stored(of: service)
    }

    /// Registers an instance outside the mesh (it never expires). Returns the
    /// sidecar that already registered that address, refusing to take it over.
    public func registerExternal(_ instance: RegisteredInstance) -> String? {
        if let sidecar = registry.sidecar(of: instance.service, key: instance.key) {
            return sidecar
        }
        if registry.registerExternal(instance) {
            logger.info("external instance registered", metadata: [
                "service": "\(instance.service)", "address": "\(instance.key.address):\(instance.key.port)",
            ])
            instancesChanged([instance.service])
        }
        return nil
    }

    /// Removes one instance, external or not; false when there is none at that address.
    public func removeInstance(service: String, key: RegisteredInstance.Key) -> Bool {
        guard registry.remove(service: service, key: key) else { return false }
        logger.info("instance removed", metadata: ["service": "\(service)", "address": "\(key.address):\(key.port)"])
        instancesChanged([service])
        return true
    }

    public func instances(of service: String) -> [RegisteredInstance] {
        registry.instances(of: service)
    }

    /// The subscribed sidecars, by id.
    public var subscribers: [String: Subscriptions.Subscriber] { subscriptions.subscribers }

    // MARK: Internals

    private func instancesChanged(_ services: Set<String>) {
        for service in services.sorted() {
            do {
                try store?.replaceInstances(of: service, with: registry.stored(of: service))
            } catch {
                logger.error("could not store the instances of a service; they live in memory until the next change",
                             metadata: ["service": "\(service)", "error": "\(error)"])
            }
        }
        pushDue()
    }

    private func policiesChanged(_ services: Set<String>) {
        for service in services.sorted() {
            policyChanges += 1
            policyVersions[service] = policyChanges
            logger.info("service policy changed", metadata: [
                "service": "\(service)", "policy": "\(policies[service]?.name ?? "none")",
            ])
        }
        pushDue()
    }

    /// The services a sidecar calling `service` gets in its snapshot: the
    /// service and those its policy routes to.
    private func snapshotServices(of service: String) -> [String] {
        [service] + (policies[service]?.policy.otherServices ?? [])
    }

    /// Sums up what a sidecar calling `service` gets from it: the instances
    /// and policies of `snapshotServices`. Changes whenever any of them changes.
    private func inputFingerprint(of service: String) -> UInt64 {
        var hasher = Hasher()
        for input in snapshotServices(of: service) {
            hasher.combine(input)
            hasher.combine(registry.version(of: input))
            hasher.combine(policyVersions[input] ?? 0)
        }
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Sends a new snapshot to every subscriber whose last one is out of date.
    private func pushDue() {
        let inputFingerprint: (String) -> UInt64 = { self.inputFingerprint(of: $0) }
        for sidecarID in subscriptions.due(inputFingerprint: inputFingerprint) {
            guard let session = sessions[sidecarID],
                  let version = subscriptions.sending(to: sidecarID, inputFingerprint: inputFingerprint),
                  let upstreams = subscriptions.subscribers[sidecarID]?.upstreams else { continue }
            var services: [String] = []
            for service in upstreams.flatMap(snapshotServices) where !services.contains(service) {
                services.append(service)
            }
            session.sink.yield(SnapshotBuilder.snapshot(
                version: version, services: services, registry: registry,
                policyJSON: { self.policies[$0].map { ServicePolicyJSON.render($0.policy) } ?? "" },
                heartbeatIntervalMillis: settings.heartbeatIntervalMillis))
        }
    }
}

/// A ServicePolicy as the control plane holds it.
private struct AppliedPolicy: Equatable {
    var name: String
    var policy: ServicePolicy
}

/// What an apply did to one resource, as `swiftmesh apply` prints it.
public struct AppliedResource: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case created, configured, unchanged
    }

    public var kind: MeshResource.Kind
    public var name: String
    public var outcome: Outcome
}

/// Why an apply stored nothing.
public enum ApplyFailure: Error, Sendable, Equatable {
    /// A resource conflicts with what is stored.
    case refused(ResourceRefusal)
    /// The store failed; the state in memory is unchanged too.
    case storage(String)
}

/// Why an apply was refused, with the field at fault.
public struct ResourceRefusal: Sendable, Equatable {
    public var path: String
    public var message: String
}
