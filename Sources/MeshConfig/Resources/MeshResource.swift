/// A piece of mesh configuration applied to the control plane, in a
/// Kubernetes-style envelope:
///
/// ```yaml
/// apiVersion: swiftmesh.dev/v1alpha1
/// kind: ServicePolicy
/// metadata: { name: user }
/// spec: { service: user, ... }
/// ```
public struct MeshResource: Sendable, Equatable {
    public static let apiVersion = "swiftmesh.dev/v1alpha1"

    public enum Kind: String, Sendable, CaseIterable {
        case servicePolicy = "ServicePolicy"
        case authorizationPolicy = "AuthorizationPolicy"

        /// The lower-case plural used in URLs and on the command line (`policies`).
        public var plural: String {
            switch self {
            case .servicePolicy: "policies"
            case .authorizationPolicy: "authorizationpolicies"
            }
        }

        /// The words that name the kind on the command line and in URLs, in any case.
        var words: [String] {
            switch self {
            case .servicePolicy: ["policies", "policy", "servicepolicies", "servicepolicy"]
            case .authorizationPolicy: ["authorizationpolicies", "authorizationpolicy", "authz"]
            }
        }

        /// The kind a command-line or URL word names (`policies`, `policy`, `ServicePolicy`, ...).
        public init?(word: String) {
            let lowered = word.lowercased()
            guard let kind = Kind.allCases.first(where: { $0.words.contains(lowered) }) else { return nil }
            self = kind
        }
    }

    public enum Spec: Sendable, Equatable {
        case servicePolicy(ServicePolicy)
        case authorizationPolicy(AuthorizationPolicy)
    }

    public var name: String
    public var spec: Spec

    public init(name: String, spec: Spec) {
        self.name = name
        self.spec = spec
    }

    public var kind: Kind {
        switch spec {
        case .servicePolicy: .servicePolicy
        case .authorizationPolicy: .authorizationPolicy
        }
    }

    /// The spec as compact JSON: what the control plane stores, serves and sends to sidecars.
    public var specJSON: String {
        switch spec {
        case .servicePolicy(let policy): ServicePolicyJSON.render(policy)
        case .authorizationPolicy(let policy): AuthorizationPolicyJSON.render(policy)
        }
    }

    /// The service the resource is about: each service has at most one resource of each kind.
    public var service: String {
        switch spec {
        case .servicePolicy(let policy): policy.service
        case .authorizationPolicy(let policy): policy.service
        }
    }
}
