import Foundation
import MeshConfig

/// Where the control plane keeps its state: the instances registered, the
/// resources applied and the join tokens made. `SQLiteStore` is the embedded
/// default for one control plane; `EtcdStore` is shared by several replicas,
/// each of which follows the others' changes (`follow`).
public protocol ControlPlaneStore: AnyObject, Sendable {
    /// Everything kept now: what a starting control plane begins with.
    func load() async throws -> StoredState

    /// Stores `resources`, replacing those of the same kind and name, all or none.
    func saveResources(_ resources: [MeshResource]) async throws

    func deleteResource(kind: MeshResource.Kind, name: String) async throws

    /// One instance registered, changed or removed. Changes are kept in the
    /// order recorded; a store across the network writes them in the
    /// background and retries, while the registry in memory is the truth.
    func record(_ change: InstanceChange)

    func saveJoinToken(digest: String, service: String, createdAt: Date, expiresAt: Date) async throws

    /// The service and expiry of the token with this digest, nil when there is none.
    func joinToken(digest: String) async throws -> (service: String, expiresAt: Date)?

    /// Tells `controlPlane` of every change other replicas make, until
    /// cancelled. A store with one writer has nothing to tell, and waits.
    func follow(_ controlPlane: ControlPlane) async throws
}

extension ControlPlaneStore {
    public func follow(_ controlPlane: ControlPlane) async throws {
        let (never, _) = AsyncStream<Never>.makeStream()
        for await _ in never {}
    }
}

/// What a store holds, as the control plane starts from it.
public struct StoredState: Sendable {
    public var instances: [Registry.StoredInstance]
    public var resources: [MeshResource]
    /// Whether the sidecars' instances belong to control-plane replicas that
    /// keep them alive in the store (etcd: a replica's lease), rather than
    /// to this control plane, which must expire them itself after a grace
    /// period when their sidecars do not come back.
    public var ownedByReplicas: Bool

    public init(instances: [Registry.StoredInstance] = [], resources: [MeshResource] = [], ownedByReplicas: Bool = false) {
        self.instances = instances
        self.resources = resources
        self.ownedByReplicas = ownedByReplicas
    }
}

/// One change of the registry, as a store records it.
public enum InstanceChange: Sendable, Equatable {
    case put(Registry.StoredInstance)
    /// This control plane's instance, written again after a shared store
    /// lost it with this replica's lease: unless another replica holds it now.
    case restore(Registry.StoredInstance)
    /// `registeredHere`: a sidecar of this control plane registered it, so a
    /// shared store removes it only if no other replica took it over since.
    case remove(service: String, key: RegisteredInstance.Key, registeredHere: Bool)
}

/// How resources are kept: the spec as canonical JSON (ServicePolicyJSON,
/// AuthorizationPolicyJSON) under its kind and name.
enum StoredResource {
    static func decode(kind kindText: String, name: String, specJSON: String) throws -> MeshResource {
        guard let kind = MeshResource.Kind(rawValue: kindText) else {
            throw StoredResourceError(kind: kindText, name: name, problem: "unknown kind")
        }
        do {
            switch kind {
            case .servicePolicy:
                return MeshResource(name: name, spec: .servicePolicy(try ResourceLoader.decodePolicy(json: specJSON)))
            case .authorizationPolicy:
                return MeshResource(
                    name: name, spec: .authorizationPolicy(try ResourceLoader.decodeAuthorizationPolicy(json: specJSON)))
            }
        } catch {
            throw StoredResourceError(kind: kindText, name: name, problem: "\(error)")
        }
    }
}

/// A stored resource the control plane cannot read back.
struct StoredResourceError: Error, CustomStringConvertible {
    var kind: String
    var name: String
    var problem: String

    var description: String { "stored \(kind) \(name) cannot be read: \(problem)" }
}
