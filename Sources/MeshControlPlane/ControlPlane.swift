import Foundation
import Logging
import MeshAPI
import MeshConfig

/// The control plane's state and the one place that changes it: the registry
/// of services and instances, the resources applied (ServicePolicy,
/// AuthorizationPolicy), the
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
        /// Of the identities snapshots give sidecars' instances.
        public var trustDomain: String

        public static let defaultHeartbeatIntervalMillis: Int64 = 1000
        public static let defaultRestartGraceMillis: Int64 = 15_000

        public init(
            heartbeatIntervalMillis: Int64 = Settings.defaultHeartbeatIntervalMillis,
            restartGraceMillis: Int64 = Settings.defaultRestartGraceMillis,
            trustDomain: String = CertificateAuthority.defaultTrustDomain
        ) {
            self.heartbeatIntervalMillis = heartbeatIntervalMillis
            self.restartGraceMillis = restartGraceMillis
            self.trustDomain = trustDomain
        }

        var ttlMillis: Int64 { 3 * heartbeatIntervalMillis }
    }

    /// One open Subscribe stream. A sidecar that reconnects gets a new
    /// session; the token tells a stale stream's end from the live one's.
    private struct Session {
        var token: UInt64
        var instance: RegisteredInstance?
        var sink: AsyncStream<Swiftmesh_V1_Snapshot>.Continuation
        /// The sidecar's admin listener, asked for `/requests/{id}`; nil without one.
        var adminAddress: HostPort?
    }

    /// A connected sidecar's admin listener, for finding the proxies that saw a request.
    public struct SidecarAdmin: Sendable {
        public var sidecarID: String
        /// The service of the sidecar's instance, if it registered one.
        public var service: String?
        public var address: HostPort
    }

    private let settings: Settings
    private let store: ControlPlaneStore?
    private let logger: Logger
    /// Wall-clock milliseconds: registry expiry must mean the same after a restart.
    private let nowMillis: @Sendable () -> Int64
    private var registry: Registry
    /// The resources applied, by kind and by the service each is about: a
    /// service has at most one resource of each kind.
    private var applied: [MeshResource.Kind: [String: MeshResource]] = [:]
    /// Rises with every change of any resource; each slot keeps the value of its last change.
    private var resourceChanges: UInt64 = 0
    private var resourceVersions: [ResourceSlot: UInt64] = [:]
    private var subscriptions = Subscriptions()
    private var sessions: [String: Session] = [:]
    /// What sidecars report of their traffic, for `/api/v1/traffic`.
    private var traffic = TrafficMonitor()
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
        let resources = try store?.resources() ?? []
        for resource in resources {
            applied[resource.kind, default: [:]][resource.service] = resource
        }
        if !stored.isEmpty || !resources.isEmpty {
            logger.info("state restored from the store", metadata: [
                "instances": "\(stored.count)", "services": "\(restored.services.count)",
                "resources": "\(resources.count)",
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
        var adminAddress: HostPort?
        if !hello.adminAddress.isEmpty {
            // The control plane calls this address: an IP and port the sidecar
            // can be reached at, not an unspecified or link-local one (cloud metadata lives there).
            guard let parsed = HostPortSyntax.parse(hello.adminAddress), HostPortSyntax.isIPLiteral(parsed.host),
                  !["0.0.0.0", "::"].contains(parsed.host), !parsed.host.hasPrefix("169.254."),
                  !parsed.host.lowercased().hasPrefix("fe80:") else {
                throw HelloRefusal("admin_address: \"\(hello.adminAddress)\" is not an IP:port the control plane can call")
            }
            adminAddress = parsed
        }
        var instance: RegisteredInstance?
        if hello.hasInstance {
            let registering = try RegisteredInstance.from(hello.instance).get()
            // Callers reach a service in mutual TLS or in plaintext, not both.
            if registry.stored(of: registering.service).contains(where: { $0.sidecarID == nil }) {
                throw HelloRefusal(
                    "instance.service: \(registering.service) has instances outside the mesh (swiftmesh register), which callers reach "
                        + "in plaintext; deregister them, or run this instance under a service of its own")
            }
            instance = registering
        }
        lastToken += 1
        sessions[hello.sidecarID]?.sink.finish()
        sessions[hello.sidecarID] = Session(token: lastToken, instance: instance, sink: sink, adminAddress: adminAddress)
        subscriptions.subscribe(sidecarID: hello.sidecarID, upstreams: hello.upstreams, service: instance?.service)
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
    func heartbeat(sidecarID: String, token: UInt64, healthy: Bool, traffic totals: [Swiftmesh_V1_TrafficTotals] = []) {
        guard let session = sessions[sidecarID], session.token == token, let instance = session.instance else { return }
        traffic.record(sidecarID: sidecarID, service: instance.service, traffic: totals, nowMillis: nowMillis())
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
        traffic.forget(sidecarID: sidecarID)
        logger.info(deregister ? "sidecar deregistered" : "sidecar stream lost", metadata: ["sidecar": "\(sidecarID)"])
        if deregister {
            instancesChanged(registry.deregister(sidecarID: sidecarID))
        }
    }

    /// The admin listeners of the sidecars connected now.
    public var sidecarAdmins: [SidecarAdmin] {
        sessions.compactMap { id, session in
            session.adminAddress.map { SidecarAdmin(sidecarID: id, service: session.instance?.service, address: $0) }
        }.sorted { $0.sidecarID < $1.sidecarID }
    }

    /// Traffic per service and per edge over the last `TrafficMonitor.windowMillis`.
    public func trafficSummary() -> TrafficSummary {
        traffic.summary(nowMillis: nowMillis())
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
        var next = applied
        var outcomes: [AppliedResource] = []
        for (resource, path) in zip(resources, paths) {
            let service = resource.service
            var ofKind = next[resource.kind] ?? [:]
            if let holder = ofKind[service], holder.name != resource.name {
                throw .refused(ResourceRefusal(
                    path: path.isEmpty ? "spec.service" : "\(path).spec.service",
                    message: "\(service) already has \(resource.kind.rawValue) \(holder.name); a service has one \(resource.kind.rawValue), so change that one or delete it first"))
            }
            let previous = ofKind.first { $0.value.name == resource.name }
            let outcome: AppliedResource.Outcome =
                previous == nil ? .created : previous?.value == resource ? .unchanged : .configured
            if let previous, previous.key != service {
                ofKind.removeValue(forKey: previous.key)
            }
            ofKind[service] = resource
            next[resource.kind] = ofKind
            outcomes.append(AppliedResource(kind: resource.kind, name: resource.name, outcome: outcome))
        }
        let changed = Set(MeshResource.Kind.allCases.flatMap { kind in
            Set((next[kind] ?? [:]).keys).union((applied[kind] ?? [:]).keys)
                .filter { next[kind]?[$0] != applied[kind]?[$0] }
                .map { ResourceSlot(kind: kind, service: $0) }
        })
        guard !changed.isEmpty else { return outcomes }
        do {
            try store?.saveResources(resources)
        } catch {
            throw .storage("the control plane could not store the resources: \(error)")
        }
        applied = next
        resourcesChanged(changed)
        return outcomes
    }

    /// Deletes a resource; false when there is none of that kind and name.
    public func delete(kind: MeshResource.Kind, name: String) throws -> Bool {
        guard let service = applied[kind]?.first(where: { $0.value.name == name })?.key else { return false }
        try store?.deleteResource(kind: kind, name: name)
        applied[kind]?.removeValue(forKey: service)
        resourcesChanged([ResourceSlot(kind: kind, service: service)])
        return true
    }

    /// The stored resources of `kind`, by name.
    public func resources(of kind: MeshResource.Kind) -> [MeshResource] {
        (applied[kind] ?? [:]).values.sorted { $0.name < $1.name }
    }

    /// The name of the resource of `kind` about `service`, if it has one.
    public func resourceName(_ kind: MeshResource.Kind, of service: String) -> String? {
        applied[kind]?[service]?.name
    }

    private func servicePolicy(of service: String) -> ServicePolicy? {
        guard case .servicePolicy(let policy)? = applied[.servicePolicy]?[service]?.spec else { return nil }
        return policy
    }

    private func authorizationPolicy(of service: String) -> AuthorizationPolicy? {
        guard case .authorizationPolicy(let policy)? = applied[.authorizationPolicy]?[service]?.spec else { return nil }
        return policy
    }

    // MARK: Queries

    /// Every service with at least one instance, sorted.
    public var services: [String] { registry.services }

    /// A service's instances with who registered them (nil: an external instance).
    public func storedInstances(of service: String) -> [Registry.StoredInstance] {
        registry.stored(of: service)
    }

    /// Why an instance outside the mesh cannot be registered, or nil.
    public enum ExternalRefusal: Error, Equatable {
        /// That address is the instance of this sidecar.
        case addressTaken(sidecar: String)
        /// The service's instances are sidecars, which callers reach in mutual TLS.
        case serviceInMesh
    }

    /// Registers an instance outside the mesh (it never expires), unless its
    /// address is a sidecar's or its service is one of sidecars.
    public func registerExternal(_ instance: RegisteredInstance) -> ExternalRefusal? {
        if let sidecar = registry.sidecar(of: instance.service, key: instance.key) {
            return .addressTaken(sidecar: sidecar)
        }
        if registry.stored(of: instance.service).contains(where: { $0.sidecarID != nil }) {
            return .serviceInMesh
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

    private func resourcesChanged(_ slots: Set<ResourceSlot>) {
        for slot in slots.sorted(by: { ($0.kind.rawValue, $0.service) < ($1.kind.rawValue, $1.service) }) {
            resourceChanges += 1
            resourceVersions[slot] = resourceChanges
            logger.info("resource changed", metadata: [
                "kind": "\(slot.kind.rawValue)", "service": "\(slot.service)",
                "resource": "\(applied[slot.kind]?[slot.service]?.name ?? "none")",
            ])
        }
        pushDue()
    }

    /// The services a sidecar calling `service` gets in its snapshot: the
    /// service and those its policy routes to.
    private func snapshotServices(of service: String) -> [String] {
        [service] + (servicePolicy(of: service)?.otherServices ?? [])
    }

    /// Sums up one input of snapshots: for a service called, the instances
    /// and policies of `snapshotServices`; for a service served, its
    /// authorization policy. Changes whenever any of them changes.
    private func inputFingerprint(of input: Subscriptions.Input) -> UInt64 {
        var hasher = Hasher()
        switch input {
        case .upstream(let service):
            for called in snapshotServices(of: service) {
                hasher.combine(called)
                hasher.combine(registry.version(of: called))
                hasher.combine(resourceVersions[ResourceSlot(kind: .servicePolicy, service: called)] ?? 0)
            }
        case .authorization(let service):
            hasher.combine(resourceVersions[ResourceSlot(kind: .authorizationPolicy, service: service)] ?? 0)
        }
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Sends a new snapshot to every subscriber whose last one is out of date.
    private func pushDue() {
        let inputFingerprint: (Subscriptions.Input) -> UInt64 = { self.inputFingerprint(of: $0) }
        for sidecarID in subscriptions.due(inputFingerprint: inputFingerprint) {
            guard let session = sessions[sidecarID],
                  let version = subscriptions.sending(to: sidecarID, inputFingerprint: inputFingerprint),
                  let subscriber = subscriptions.subscribers[sidecarID] else { continue }
            let upstreams = subscriber.upstreams
            var services: [String] = []
            for service in upstreams.flatMap(snapshotServices) where !services.contains(service) {
                services.append(service)
            }
            session.sink.yield(SnapshotBuilder.snapshot(
                version: version, services: services, registry: registry,
                policyJSON: { self.servicePolicy(of: $0).map(ServicePolicyJSON.render) ?? "" },
                authorizationPolicyJSON: subscriber.service.flatMap(authorizationPolicy(of:)).map(AuthorizationPolicyJSON.render) ?? "",
                heartbeatIntervalMillis: settings.heartbeatIntervalMillis, trustDomain: settings.trustDomain))
        }
    }
}

/// Where a resource applies: its kind and the service it is about.
private struct ResourceSlot: Hashable {
    var kind: MeshResource.Kind
    var service: String
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
