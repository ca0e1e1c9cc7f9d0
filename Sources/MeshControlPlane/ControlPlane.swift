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
    private let store: (any ControlPlaneStore)?
    private let logger: Logger
    /// Wall-clock milliseconds: registry expiry must mean the same after a restart.
    private let nowMillis: @Sendable () -> Int64
    private var registry: Registry
    /// What the store holds of each service's instances, as far as this
    /// control plane knows: the registry's changes are written as the
    /// difference from it. `registeredHere`: this control plane's sidecar registered it.
    private var recorded: [String: [RegisteredInstance.Key: (stored: Registry.StoredInstance, registeredHere: Bool)]] = [:]
    /// The resources applied, by kind and by the service each is about: a
    /// service has at most one resource of each kind.
    private var applied: [MeshResource.Kind: [String: MeshResource]] = [:]
    /// Rises with every change of any resource; each slot keeps the value of its last change.
    private var resourceChanges: UInt64 = 0
    private var resourceVersions: [ResourceSlot: UInt64] = [:]
    /// Whether an apply or delete is writing to the store, and those waiting for it.
    private var resourceWriteInProgress = false
    private var resourceWriters: [CheckedContinuation<Void, Never>] = []
    private var subscriptions = Subscriptions()
    private var sessions: [String: Session] = [:]
    /// What sidecars report of their traffic, for `/api/v1/traffic`.
    private var traffic = TrafficMonitor()
    /// What sidecars report of the requests each route matched, for `get policies`.
    private var routeMatches = RouteMatchMonitor()
    private var lastToken: UInt64 = 0

    public static let wallClockMillis: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Starts from `state`, what `store` kept (nothing without a store).
    public init(
        settings: Settings = Settings(), store: (any ControlPlaneStore)?, state: StoredState = StoredState(), logger: Logger,
        nowMillis: @escaping @Sendable () -> Int64 = ControlPlane.wallClockMillis
    ) {
        self.settings = settings
        self.store = store
        self.logger = logger
        self.nowMillis = nowMillis
        registry = Registry(
            restoring: state.instances,
            graceUntilMillis: state.ownedByReplicas ? nil : nowMillis() + settings.restartGraceMillis)
        for stored in state.instances {
            recorded[stored.instance.service, default: [:]][stored.instance.key] =
                (stored, registry.isRegisteredHere(service: stored.instance.service, key: stored.instance.key))
        }
        for resource in state.resources {
            applied[resource.kind, default: [:]][resource.service] = resource
        }
        if !state.instances.isEmpty || !state.resources.isEmpty {
            let services = Set(state.instances.map(\.instance.service)).count
            logger.info("state restored from the store", metadata: [
                "instances": "\(state.instances.count)", "services": "\(services)",
                "resources": "\(state.resources.count)",
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
        if let instance, register(instance, sidecarID: hello.sidecarID, healthy: hello.health != .unhealthy) {
            instancesChanged([instance.service])
        } else {
            pushDue()
        }
        return lastToken
    }

    /// A heartbeat: the session's instance stays registered (or comes back,
    /// had it expired during a stall), with the health its sidecar found.
    func heartbeat(
        sidecarID: String, token: UInt64, healthy: Bool, traffic totals: [Swiftmesh_V1_TrafficTotals] = [],
        routes: [Swiftmesh_V1_RouteTotals] = []
    ) {
        guard let session = sessions[sidecarID], session.token == token, let instance = session.instance else { return }
        traffic.record(sidecarID: sidecarID, service: instance.service, traffic: totals, nowMillis: nowMillis())
        routeMatches.record(
            sidecarID: sidecarID, services: subscriptions.subscribers[sidecarID]?.upstreams ?? [], routes: routes,
            nowMillis: nowMillis())
        let before = registry.isHealthy(service: instance.service, key: instance.key)
        guard register(instance, sidecarID: sidecarID, healthy: healthy) else { return }
        if before == nil {
            logger.info("instance registered again by a heartbeat after it expired", metadata: ["sidecar": "\(sidecarID)"])
        } else if before != healthy {
            logger.info(healthy ? "instance healthy again" : "instance unhealthy: its sidecar cannot reach the app; callers stop getting it",
                        metadata: ["sidecar": "\(sidecarID)"])
        }
        instancesChanged([instance.service])
    }

    /// Registers the instance of a sidecar connected here. Returns whether
    /// the store must hear of it: the instance set changed, or the instance
    /// becomes this control plane's (another replica's until now, or
    /// written by this replica's previous life, on a lease that will run out).
    private func register(_ instance: RegisteredInstance, sidecarID: String, healthy: Bool) -> Bool {
        let wasHere = registry.isRegisteredHere(service: instance.service, key: instance.key)
        let changed = registry.register(
            instance, sidecarID: sidecarID, ttlMillis: settings.ttlMillis, nowMillis: nowMillis(), healthy: healthy)
        return changed || !wasHere
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
        routeMatches.forget(sidecarID: sidecarID)
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
        let subscribers = subscriptions.subscribers.values
        let calledThroughTheMesh = Set(subscribers.flatMap(\.upstreams))
        let callers = Set(subscribers.filter { !$0.upstreams.isEmpty }.compactMap(\.service))
        let topology = TrafficMonitor.Topology(
            meshServices: Set(sessions.values.compactMap { $0.instance?.service }),
            entryServices: callers.subtracting(calledThroughTheMesh))
        return traffic.summary(nowMillis: nowMillis(), topology: topology)
    }

    /// The requests each route of every ServicePolicy matched over the last
    /// `RouteMatchMonitor.windowMillis`, as its callers' sidecars counted
    /// them: per policy, one count per route then one for the catch-all
    /// route; nil counts when no sidecar calling the service reported long enough.
    /// Counts are by a route's place in the sidecars' listener: for a
    /// heartbeat after a policy changes, until its sidecars apply it, they
    /// may still be of the routes before.
    public func policyRouteMatches() -> [PolicyRouteMatches] {
        let (counts, reported) = routeMatches.matched(nowMillis: nowMillis())
        return resources(of: .servicePolicy).compactMap { resource in
            guard case .servicePolicy(let policy) = resource.spec else { return nil }
            let known = reported.contains(policy.service)
            let matched = (0...policy.routes.count).map { route in
                known ? counts[.init(service: policy.service, route: route)] ?? 0 : nil
            }
            return PolicyRouteMatches(
                policy: resource.name, service: policy.service, routes: Array(matched.dropLast()),
                catchAll: matched.last ?? nil)
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
    public func apply(_ resources: [MeshResource], paths: [String]) async throws(ApplyFailure) -> [AppliedResource] {
        // One apply or delete at a time here: the check and the write must
        // see the same resources, and the write is an await away.
        await beginResourceWrite()
        defer { endResourceWrite() }
        var next = applied
        var outcomes: [AppliedResource] = []
        for (resource, path) in zip(resources, paths) {
            let service = resource.service
            if let holder = next[resource.kind]?[service], holder.name != resource.name {
                throw .refused(ResourceRefusal(
                    path: path.isEmpty ? "spec.service" : "\(path).spec.service",
                    message: "\(service) already has \(resource.kind.rawValue) \(holder.name); a service has one \(resource.kind.rawValue), so change that one or delete it first"))
            }
            let previous = next[resource.kind]?.values.first { $0.name == resource.name }
            let outcome: AppliedResource.Outcome =
                previous == nil ? .created : previous == resource ? .unchanged : .configured
            Self.place(resource, in: &next)
            outcomes.append(AppliedResource(kind: resource.kind, name: resource.name, outcome: outcome))
        }
        guard !Self.changedSlots(from: applied, to: next).isEmpty else { return outcomes }
        do {
            try await store?.saveResources(resources)
        } catch let conflict as ResourceConflict {
            let path = zip(resources, paths).first { $0.0.kind == conflict.kind && $0.0.service == conflict.service }?.1 ?? ""
            throw .refused(ResourceRefusal(path: path.isEmpty ? "spec.service" : "\(path).spec.service", message: conflict.description))
        } catch {
            throw .storage("the control plane could not store the resources: \(error)")
        }
        // Placed on what is applied now: other replicas may have changed
        // resources while the store wrote.
        var merged = applied
        for resource in resources {
            Self.place(resource, in: &merged)
        }
        replaceApplied(with: merged)
        return outcomes
    }

    /// Deletes a resource; false when there is none of that kind and name.
    public func delete(kind: MeshResource.Kind, name: String) async throws -> Bool {
        await beginResourceWrite()
        defer { endResourceWrite() }
        guard applied[kind]?.contains(where: { $0.value.name == name }) == true else { return false }
        try await store?.deleteResource(kind: kind, name: name)
        removeApplied(kind: kind, name: name)
        return true
    }

    private func beginResourceWrite() async {
        while resourceWriteInProgress {
            await withCheckedContinuation { resourceWriters.append($0) }
        }
        resourceWriteInProgress = true
    }

    private func endResourceWrite() {
        resourceWriteInProgress = false
        if !resourceWriters.isEmpty { resourceWriters.removeFirst().resume() }
    }

    /// Puts `resource` in the slot of its service, leaving the one it held
    /// under the same name if it moved to another service.
    private static func place(_ resource: MeshResource, in resources: inout [MeshResource.Kind: [String: MeshResource]]) {
        var ofKind = resources[resource.kind] ?? [:]
        if let previous = ofKind.first(where: { $0.value.name == resource.name }), previous.key != resource.service {
            ofKind.removeValue(forKey: previous.key)
        }
        ofKind[resource.service] = resource
        resources[resource.kind] = ofKind
    }

    private static func changedSlots(
        from old: [MeshResource.Kind: [String: MeshResource]], to new: [MeshResource.Kind: [String: MeshResource]]
    ) -> Set<ResourceSlot> {
        Set(MeshResource.Kind.allCases.flatMap { kind in
            Set((new[kind] ?? [:]).keys).union((old[kind] ?? [:]).keys)
                .filter { new[kind]?[$0] != old[kind]?[$0] }
                .map { ResourceSlot(kind: kind, service: $0) }
        })
    }

    private func replaceApplied(with next: [MeshResource.Kind: [String: MeshResource]]) {
        let changed = Self.changedSlots(from: applied, to: next)
        applied = next
        if !changed.isEmpty { resourcesChanged(changed) }
    }

    private func removeApplied(kind: MeshResource.Kind, name: String) {
        guard let service = applied[kind]?.first(where: { $0.value.name == name })?.key else { return }
        applied[kind]?.removeValue(forKey: service)
        resourcesChanged([ResourceSlot(kind: kind, service: service)])
    }

    // MARK: Changes made by other replicas

    /// Takes what another control-plane replica changed in the shared store.
    public func storeChanged(_ events: [StoreEvent]) {
        var services: Set<String> = []
        for event in events {
            switch event {
            case .instancePut(_, registeredHere: true):
                // This replica's own write, back through the watch.
                continue
            case .instancePut(let stored, registeredHere: false):
                let service = stored.instance.service
                recorded[service, default: [:]][stored.instance.key] = (stored, false)
                if registry.putShared(stored) { services.insert(service) }
            case .instanceRemoved(let service, let key):
                recorded[service]?.removeValue(forKey: key)
                if registry.isRegisteredHere(service: service, key: key) {
                    // One of this replica's own stays while its sidecar
                    // beats: it went with a lease that ran out, or through
                    // another replica's deregister. Not recorded any more,
                    // it is written again below.
                    services.insert(service)
                } else if registry.remove(service: service, key: key) {
                    services.insert(service)
                }
            case .resourcePut(let resource):
                var next = applied
                Self.place(resource, in: &next)
                replaceApplied(with: next)
            case .resourceDeleted(let kind, let name):
                removeApplied(kind: kind, name: name)
            }
        }
        if !services.isEmpty { instancesChanged(services) }
    }

    /// Starts again from everything the shared store holds, after its
    /// history of changes since the last one seen was lost. This replica's
    /// own instances stay, and are written again where the store lacks them.
    public func resync(_ state: StoredState) {
        var services: Set<String> = []
        var inStore: [String: Set<RegisteredInstance.Key>] = [:]
        for stored in state.instances {
            let service = stored.instance.service
            inStore[service, default: []].insert(stored.instance.key)
            guard !registry.isRegisteredHere(service: service, key: stored.instance.key) else { continue }
            recorded[service, default: [:]][stored.instance.key] = (stored, false)
            if registry.putShared(stored) { services.insert(service) }
        }
        for service in registry.services {
            for stored in registry.stored(of: service) where inStore[service]?.contains(stored.instance.key) != true {
                recorded[service]?.removeValue(forKey: stored.instance.key)
                if registry.isRegisteredHere(service: service, key: stored.instance.key) {
                    services.insert(service)
                } else if registry.remove(service: service, key: stored.instance.key) {
                    services.insert(service)
                }
            }
        }
        var next: [MeshResource.Kind: [String: MeshResource]] = [:]
        for resource in state.resources {
            next[resource.kind, default: [:]][resource.service] = resource
        }
        replaceApplied(with: next)
        if !services.isEmpty { instancesChanged(services) }
    }

    /// Writes every instance this replica's sidecars registered again: the
    /// shared store lost them with this replica's lease.
    func recordOwnedInstancesAgain() {
        for stored in registry.registeredHere {
            store?.record(.restore(stored))
        }
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

    /// The subset of `service`'s instances the sidecars' cluster `cluster`
    /// holds: empty for the cluster of every instance, the labels a policy's
    /// split names for a subset's cluster, nil when no policy names it.
    public func subset(ofCluster cluster: String, service: String) -> [String: String]? {
        if cluster == service { return [:] }
        for resource in resources(of: .servicePolicy) {
            guard case .servicePolicy(let policy) = resource.spec else { continue }
            for destination in policy.routes.flatMap({ $0.split ?? [] }) where destination.service == service {
                if PolicyDestination.clusterName(service: service, subset: destination.subset) == cluster {
                    return destination.subset
                }
            }
        }
        return nil
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

    /// Records in the store how the instances of `services` differ from
    /// what it holds, then pushes.
    private func instancesChanged(_ services: Set<String>) {
        for service in services.sorted() {
            var before = recorded[service] ?? [:]
            for stored in registry.stored(of: service) {
                let key = stored.instance.key
                let registeredHere = registry.isRegisteredHere(service: service, key: key)
                if let previous = before.removeValue(forKey: key), previous.stored == stored,
                   previous.registeredHere == registeredHere { continue }
                recorded[service, default: [:]][key] = (stored, registeredHere)
                store?.record(.put(stored))
            }
            for (key, gone) in before {
                recorded[service]?.removeValue(forKey: key)
                store?.record(.remove(service: service, key: key, registeredHere: gone.registeredHere))
            }
            if recorded[service]?.isEmpty == true { recorded.removeValue(forKey: service) }
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
