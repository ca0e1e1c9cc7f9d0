/// Services and their instances, as a plain value with the clock passed in
/// (milliseconds of wall-clock time, so that expiry means the same after a
/// control-plane restart). Instances registered by a sidecar live while it
/// sends heartbeats: each one registers the instance again, which moves its
/// expiry `ttl` ahead (and brings it back if it had expired). External
/// instances, registered by an operator, never expire.
///
/// Every change to a service's instance set raises that service's version,
/// which is how the push side knows which subscribers need a new snapshot.
public struct Registry: Sendable, Equatable {
    struct Entry: Sendable, Equatable {
        var instance: RegisteredInstance
        /// The sidecar that registered it; nil for an external instance.
        var sidecarID: String?
        /// When it is removed unless a heartbeat comes first; nil: never.
        var expiresAtMillis: Int64?
        /// What its sidecar's latest check of the app found; external instances are taken as healthy.
        var healthy = true
    }

    private(set) var entries: [String: [RegisteredInstance.Key: Entry]] = [:]
    private(set) var versions: [String: UInt64] = [:]

    public init() {}

    /// The services with at least one instance, sorted.
    public var services: [String] { entries.keys.sorted() }

    /// A service's instances, in address order.
    public func instances(of service: String) -> [RegisteredInstance] {
        (entries[service] ?? [:]).values.map(\.instance).sorted { $0.key < $1.key }
    }

    /// The sidecar that registered an instance; nil for an external one or none.
    public func sidecar(of service: String, key: RegisteredInstance.Key) -> String? {
        entries[service]?[key]?.sidecarID
    }

    /// What the sidecar of a registered instance last said of its app; nil when not registered.
    public func isHealthy(service: String, key: RegisteredInstance.Key) -> Bool? {
        entries[service]?[key]?.healthy
    }

    /// The version of a service's instance set; 0 for one never seen.
    public func version(of service: String) -> UInt64 {
        versions[service] ?? 0
    }

    /// Registers (or updates) an instance for a sidecar, expiring `ttlMillis`
    /// after `nowMillis` unless a heartbeat registers it again. Returns
    /// whether the service's instance set changed (not so for a heartbeat).
    @discardableResult
    public mutating func register(
        _ instance: RegisteredInstance, sidecarID: String, ttlMillis: Int64, nowMillis: Int64, healthy: Bool = true
    ) -> Bool {
        put(Entry(instance: instance, sidecarID: sidecarID, expiresAtMillis: nowMillis + ttlMillis, healthy: healthy))
    }

    /// Registers (or updates) an instance outside the mesh, which never expires.
    @discardableResult
    public mutating func registerExternal(_ instance: RegisteredInstance) -> Bool {
        put(Entry(instance: instance, sidecarID: nil, expiresAtMillis: nil))
    }

    /// Removes every instance a sidecar registered (it deregistered, or its
    /// stream ended for good). Returns the services that changed.
    public mutating func deregister(sidecarID: String) -> Set<String> {
        remove { $0.sidecarID == sidecarID }
    }

    /// Removes one instance, external or not. Returns whether it existed.
    @discardableResult
    public mutating func remove(service: String, key: RegisteredInstance.Key) -> Bool {
        !remove { $0.instance.service == service && $0.instance.key == key }.isEmpty
    }

    /// One instance as the store keeps it: expiry is not stored, since a
    /// heartbeat would mean a write; a restarted control plane gives every
    /// sidecar's instance a fresh grace period instead (`restore`).
    public struct StoredInstance: Sendable, Equatable {
        public var instance: RegisteredInstance
        /// The sidecar that registered it; nil for an external instance.
        public var sidecarID: String?
        /// Not stored: a restarted control plane takes every instance as
        /// healthy until its sidecar's next heartbeat says otherwise.
        public var healthy: Bool

        public init(instance: RegisteredInstance, sidecarID: String?, healthy: Bool = true) {
            self.instance = instance
            self.sidecarID = sidecarID
            self.healthy = healthy
        }
    }

    /// A service's instances with who registered them, in address order.
    public func stored(of service: String) -> [StoredInstance] {
        (entries[service] ?? [:]).values.sorted { $0.instance.key < $1.instance.key }
            .map { StoredInstance(instance: $0.instance, sidecarID: $0.sidecarID, healthy: $0.healthy) }
    }

    /// The registry a restarted control plane starts from: what the store
    /// kept. With `graceUntilMillis`, each sidecar's instance is this
    /// control plane's and expires then unless its sidecar reconnects and
    /// beats before; without, the instances are shared ones (`putShared`).
    public init(restoring stored: [StoredInstance], graceUntilMillis: Int64?) {
        for item in stored {
            _ = put(Entry(instance: item.instance, sidecarID: item.sidecarID,
                          expiresAtMillis: item.sidecarID == nil ? nil : graceUntilMillis, healthy: item.healthy))
        }
    }

    /// Whether this control plane keeps the instance alive: its own
    /// sidecar registered it. Not so for one outside the mesh, nor for one
    /// another control-plane replica wrote to a shared store.
    public func isRegisteredHere(service: String, key: RegisteredInstance.Key) -> Bool {
        guard let entry = entries[service]?[key] else { return false }
        return entry.sidecarID != nil && entry.expiresAtMillis != nil
    }

    /// The instances this control plane's sidecars registered.
    public var registeredHere: [StoredInstance] {
        entries.values.flatMap(\.values).filter { $0.sidecarID != nil && $0.expiresAtMillis != nil }
            .map { StoredInstance(instance: $0.instance, sidecarID: $0.sidecarID, healthy: $0.healthy) }
    }

    /// Takes an instance as a shared store holds it: another replica keeps
    /// it alive (or it is outside the mesh), so it never expires here; the
    /// store removes it. Returns whether the service's instance set changed.
    @discardableResult
    public mutating func putShared(_ stored: StoredInstance) -> Bool {
        put(Entry(instance: stored.instance, sidecarID: stored.sidecarID, expiresAtMillis: nil, healthy: stored.healthy))
    }

    /// Removes instances whose expiry passed. Returns the services that changed.
    public mutating func expire(nowMillis: Int64) -> Set<String> {
        remove { entry in entry.expiresAtMillis.map { $0 <= nowMillis } ?? false }
    }

    private mutating func put(_ entry: Entry) -> Bool {
        let service = entry.instance.service
        let previous = entries[service]?[entry.instance.key]
        entries[service, default: [:]][entry.instance.key] = entry
        // A heartbeat's new expiry alone is no change to subscribers.
        guard previous?.instance != entry.instance || previous?.healthy != entry.healthy else { return false }
        versions[service, default: 0] += 1
        return true
    }

    private mutating func remove(where shouldRemove: (Entry) -> Bool) -> Set<String> {
        var changed: Set<String> = []
        for (service, byKey) in entries {
            let kept = byKey.filter { !shouldRemove($0.value) }
            guard kept.count != byKey.count else { continue }
            entries[service] = kept.isEmpty ? nil : kept
            versions[service, default: 0] += 1
            changed.insert(service)
        }
        return changed
    }
}
