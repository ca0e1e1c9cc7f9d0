/// An AuthorizationPolicy spec as compact JSON with the YAML's keys: what
/// the control plane stores and sends to the service's sidecars, and what
/// `ResourceLoader.decodeAuthorizationPolicy` reads back to the same value.
public enum AuthorizationPolicyJSON {
    public static func render(_ policy: AuthorizationPolicy) -> String {
        SpecJSON.render(PolicyJSON(policy))
    }

    private struct PolicyJSON: Encodable {
        var service: String
        var `default`: String
        var rules: [AuthorizationRuleJSON]?

        init(_ policy: AuthorizationPolicy) {
            service = policy.service
            `default` = policy.defaultAction.rawValue
            rules = policy.rules.isEmpty ? nil : policy.rules.map(AuthorizationRuleJSON.init)
        }
    }
}

/// One rule with the YAML's keys, for policies and for `/config`.
struct AuthorizationRuleJSON: Encodable {
    struct GRPC: Encodable {
        var service: String
        var methods: [String]?
    }

    var action: String
    var from: [String]?
    var grpc: GRPC?
    var paths: [String]?
    var methods: [String]?

    init(_ rule: AuthorizationRule) {
        action = rule.action.rawValue
        from = rule.from
        grpc = rule.grpc.map { GRPC(service: $0.service, methods: $0.methods.isEmpty ? nil : $0.methods) }
        paths = rule.paths.isEmpty ? nil : rule.paths
        methods = rule.methods.isEmpty ? nil : rule.methods
    }
}

/// `listeners[].authorization` in `/config`.
struct ListenerAuthorizationJSON: Encodable {
    var `default`: String
    var rules: [AuthorizationRuleJSON]
    var trustDomain: String

    init(_ authorization: AuthorizationConfig) {
        `default` = authorization.defaultAction.rawValue
        rules = authorization.rules.map(AuthorizationRuleJSON.init)
        trustDomain = authorization.trustDomain
    }
}
