/// The sidecars subscribed to the control plane and what each was sent, as
/// a plain value: which of them need a new snapshot after a change, and what
/// each said of its last one (shown in the CLI).
///
/// A snapshot's content for one sidecar depends only on its inputs: its
/// upstreams' instances and policies (the upstream's and those of the
/// services its policy routes to), and the authorization policy of its own
/// service, each summed up in a value that changes with every change of
/// them. A subscriber is due when any of those values differs from the one
/// its last snapshot was built from, so a change reaches exactly the sidecars
/// that call the changed service, or that serve it.
public struct Subscriptions: Sendable, Equatable {
    /// One part of what a snapshot is built from.
    public enum Input: Hashable, Sendable {
        /// A service the sidecar calls.
        case upstream(String)
        /// The sidecar's own service, whose callers its authorization policy decides.
        case authorization(String)
    }

    public struct Subscriber: Sendable, Equatable {
        public let sidecarID: String
        /// The services the sidecar's app calls.
        public var upstreams: [String]
        /// The service of the sidecar's instance; nil: it registered none.
        public var service: String?
        /// The fingerprint of each input in the last snapshot sent; nil: none sent yet.
        var builtFrom: [Input: UInt64]?

        var inputs: [Input] {
            upstreams.map(Input.upstream) + (service.map { [.authorization($0)] } ?? [])
        }
        /// The version of the last snapshot sent; 0: none yet.
        public internal(set) var sentVersion: UInt64 = 0
        public internal(set) var ackedVersion: UInt64?
        /// The last snapshot the sidecar refused, and why; cleared by a later ack.
        public internal(set) var refusal: Refusal?
    }

    public struct Refusal: Sendable, Equatable {
        public var version: UInt64
        public var reason: String
    }

    public private(set) var subscribers: [String: Subscriber] = [:]
    /// Snapshot versions rise across all subscribers, so a version names one snapshot.
    private var lastVersion: UInt64 = 0

    public init() {}

    /// A sidecar opened its stream (or reopened it: it starts over).
    public mutating func subscribe(sidecarID: String, upstreams: [String], service: String? = nil) {
        subscribers[sidecarID] = Subscriber(sidecarID: sidecarID, upstreams: upstreams, service: service)
    }

    public mutating func unsubscribe(sidecarID: String) {
        subscribers.removeValue(forKey: sidecarID)
    }

    /// The subscribers whose last snapshot is out of date, sorted.
    public func due(inputFingerprint: (Input) -> UInt64) -> [String] {
        subscribers.values.filter { subscriber in
            guard let builtFrom = subscriber.builtFrom else { return true }
            return subscriber.inputs.contains { builtFrom[$0] != inputFingerprint($0) }
        }.map(\.sidecarID).sorted()
    }

    /// A snapshot built from the current inputs is being sent to `sidecarID`;
    /// returns its version (nil for an unknown subscriber).
    public mutating func sending(to sidecarID: String, inputFingerprint: (Input) -> UInt64) -> UInt64? {
        guard var subscriber = subscribers[sidecarID] else { return nil }
        lastVersion += 1
        subscriber.builtFrom = Dictionary(subscriber.inputs.map { ($0, inputFingerprint($0)) }) { first, _ in first }
        subscriber.sentVersion = lastVersion
        subscribers[sidecarID] = subscriber
        return lastVersion
    }

    /// The sidecar applied `version`.
    public mutating func acknowledged(sidecarID: String, version: UInt64) {
        guard var subscriber = subscribers[sidecarID], version <= subscriber.sentVersion else { return }
        subscriber.ackedVersion = max(subscriber.ackedVersion ?? 0, version)
        if let refusal = subscriber.refusal, refusal.version <= version {
            subscriber.refusal = nil
        }
        subscribers[sidecarID] = subscriber
    }

    /// The sidecar refused `version` and keeps serving with the one before.
    public mutating func refused(sidecarID: String, version: UInt64, reason: String) {
        guard var subscriber = subscribers[sidecarID], version <= subscriber.sentVersion else { return }
        subscriber.refusal = Refusal(version: version, reason: reason)
        subscribers[sidecarID] = subscriber
    }
}
