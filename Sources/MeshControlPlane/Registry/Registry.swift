/// Services and their instances, as a plain value with the clock passed in
/// (milliseconds of wall-clock time, so that expiry means the same after a
/// control-plane restart). Instances registered by a sidecar live while it
/// sends heartbeats: each one moves their expiry `ttl` ahead. External
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

    /// The version of a service's instance set; 0 for one never seen.
    public func version(of service: String) -> UInt64 {
        versions[service] ?? 0
    }

    /// Registers (or updates) an instance for a sidecar, expiring `ttlMillis`
    /// after `nowMillis` unless a heartbeat comes. Returns whether the
    /// service's instance set changed.
    @discardableResult
    public mutating func register(
        _ instance: RegisteredInstance, sidecarID: String, ttlMillis: Int64, nowMillis: Int64
    ) -> Bool {
        put(Entry(instance: instance, sidecarID: sidecarID, expiresAtMillis: nowMillis + ttlMillis))
    }

    /// Registers (or updates) an instance outside the mesh, which never expires.
    @discardableResult
    public mutating func registerExternal(_ instance: RegisteredInstance) -> Bool {
        put(Entry(instance: instance, sidecarID: nil, expiresAtMillis: nil))
    }

    /// A sidecar is alive: its instances' expiry moves ahead.
    public mutating func heartbeat(sidecarID: String, ttlMillis: Int64, nowMillis: Int64) {
        for (service, byKey) in entries {
            for (key, entry) in byKey where entry.sidecarID == sidecarID {
                entries[service]?[key]?.expiresAtMillis = nowMillis + ttlMillis
            }
        }
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

    /// Removes instances whose expiry passed. Returns the services that changed.
    public mutating func expire(nowMillis: Int64) -> Set<String> {
        remove { entry in entry.expiresAtMillis.map { $0 <= nowMillis } ?? false }
    }

    private mutating func put(_ entry: Entry) -> Bool {
        let service = entry.instance.service
        let previous = entries[service]?[entry.instance.key]
        entries[service, default: [:]][entry.instance.key] = entry
        // A heartbeat's new expiry alone is no change to subscribers.
        guard previous?.instance != entry.instance else { return false }
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
