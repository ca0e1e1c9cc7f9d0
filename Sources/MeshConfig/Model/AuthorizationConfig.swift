/// Who may call what on a listener (`listeners[].authorization`; in the mesh,
/// the AuthorizationPolicy of the sidecar's service on its inbound
/// listener). Rules are tried in order and the first that matches decides;
/// when none matches, `defaultAction` does.
public struct AuthorizationConfig: Sendable, Equatable {
    public var defaultAction: AuthorizationAction
    public var rules: [AuthorizationRule]
    /// The trust domain that service names in `from` belong to.
    public var trustDomain: String

    public static let defaultTrustDomain = "swiftmesh.local"

    public init(
        defaultAction: AuthorizationAction, rules: [AuthorizationRule] = [],
        trustDomain: String = AuthorizationConfig.defaultTrustDomain
    ) {
        self.defaultAction = defaultAction
        self.rules = rules
        self.trustDomain = trustDomain
    }
}

/// Config spelling: `allow`, `deny`.
public enum AuthorizationAction: String, Sendable, Equatable, CaseIterable {
    case allow
    case deny
}

/// One rule: a request matches when every condition given holds.
public struct AuthorizationRule: Sendable, Equatable {
    /// What a matching request gets. Default allow.
    public var action: AuthorizationAction
    /// The callers: service names (`gateway`) or SPIFFE IDs, `*` matching
    /// any run of characters. A caller without an identity (plaintext on a
    /// permissive listener) matches none. nil: any caller, with or without an identity.
    public var from: [String]?
    /// A gRPC service and some of its methods (none listed: all of them).
    public var grpc: GRPCAuthorizationMatch?
    /// Exact paths, or prefixes ending in `*` (`/api/*`); empty: any path.
    public var paths: [String]
    /// HTTP methods; empty: any method.
    public var methods: [String]

    public init(
        action: AuthorizationAction = .allow, from: [String]? = nil, grpc: GRPCAuthorizationMatch? = nil,
        paths: [String] = [], methods: [String] = []
    ) {
        self.action = action
        self.from = from
        self.grpc = grpc
        self.paths = paths
        self.methods = methods
    }
}

public struct GRPCAuthorizationMatch: Sendable, Equatable {
    /// Fully qualified: `user.UserService`.
    public var service: String
    /// Method names: `GetUser`; empty: every method of the service.
    public var methods: [String]

    public init(service: String, methods: [String] = []) {
        self.service = service
        self.methods = methods
    }
}

/// The AuthorizationPolicy resource's spec: the authorization every instance
/// of `service` applies to its inbound requests.
public struct AuthorizationPolicy: Sendable, Equatable {
    public var service: String
    public var defaultAction: AuthorizationAction
    public var rules: [AuthorizationRule]

    public init(service: String, defaultAction: AuthorizationAction, rules: [AuthorizationRule] = []) {
        self.service = service
        self.defaultAction = defaultAction
        self.rules = rules
    }

    /// As a listener applies it, with service names read in `trustDomain`.
    public func listenerAuthorization(trustDomain: String) -> AuthorizationConfig {
        AuthorizationConfig(defaultAction: defaultAction, rules: rules, trustDomain: trustDomain)
    }
}
