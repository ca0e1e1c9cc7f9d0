extension ProxyConfigDecoder {
    /// `listeners[].authorization`.
    mutating func listenerAuthorization(_ node: ConfigNode) -> AuthorizationConfig? {
        guard let fields = reader.mapping(node, keys: ["default", "rules", "trustDomain"]) else { return nil }
        let (defaultAction, rules) = authorizationBody(fields)
        let trustDomain = fields["trustDomain"].flatMap { node -> String? in
            guard let text = reader.string(node, expected: "a trust domain such as swiftmesh.local") else { return nil }
            if let problem = TrustDomainSyntax.problem(text) {
                reader.report(node.path, problem)
                return nil
            }
            return text
        }
        guard let defaultAction, let rules, !fields.has("trustDomain") || trustDomain != nil else { return nil }
        return AuthorizationConfig(
            defaultAction: defaultAction, rules: rules, trustDomain: trustDomain ?? AuthorizationConfig.defaultTrustDomain)
    }

    /// An AuthorizationPolicy's `spec`.
    mutating func authorizationPolicy(_ node: ConfigNode) -> AuthorizationPolicy? {
        guard let fields = reader.mapping(node, keys: ["service", "default", "rules"]) else { return nil }
        let service = reader.required("service", in: fields, hint: "add the service whose callers the policy decides, e.g. \"service: user\"")
            .flatMap { serviceName($0) }
        let (defaultAction, rules) = authorizationBody(fields)
        guard let service, let defaultAction, let rules else { return nil }
        return AuthorizationPolicy(service: service, defaultAction: defaultAction, rules: rules)
    }

    /// `default` (deny when left out: only what the rules allow) and `rules`.
    private mutating func authorizationBody(_ fields: ConfigMapping) -> (AuthorizationAction?, [AuthorizationRule]?) {
        let defaultAction: AuthorizationAction? =
            if let node = fields["default"] { reader.choice(node, of: AuthorizationAction.self) } else { .deny }
        guard let ruleNodes = fields["rules"].map({ reader.list($0, of: "rules") }) ?? [] else { return (defaultAction, nil) }
        let rules = ruleNodes.map { authorizationRule($0) }
        return (defaultAction, rules.contains { $0 == nil } ? nil : rules.compactMap { $0 })
    }

    private mutating func authorizationRule(_ node: ConfigNode) -> AuthorizationRule? {
        guard let fields = reader.mapping(node, keys: ["action", "from", "grpc", "paths", "methods"]) else { return nil }
        let action: AuthorizationAction? =
            if let node = fields["action"] { reader.choice(node, of: AuthorizationAction.self) } else { .allow }
        let from = fields["from"].flatMap { callers($0) }
        let grpc = fields["grpc"].flatMap { grpcAuthorization($0) }
        let paths = fields["paths"].flatMap { pathPatterns($0) }
        let methods = fields["methods"].flatMap { self.methods($0) }
        if fields.has("grpc") && fields.has("paths") {
            reader.report(fields.path.key("paths"), "a rule matches gRPC methods or paths, not both; write two rules")
            return nil
        }
        guard let action, !fields.has("from") || from != nil, !fields.has("grpc") || grpc != nil,
              !fields.has("paths") || paths != nil, !fields.has("methods") || methods != nil else { return nil }
        return AuthorizationRule(action: action, from: from, grpc: grpc, paths: paths ?? [], methods: methods ?? [])
    }

    /// Service names or SPIFFE IDs, with `*` wildcards.
    private mutating func callers(_ node: ConfigNode) -> [String]? {
        let expected = "a service name such as gateway, or a SPIFFE ID such as spiffe://swiftmesh.local/service/gateway (* matches anything)"
        guard let items = reader.list(node, of: "callers", atLeastOne: "caller such as gateway, or \"*\" for any caller with an identity")
        else { return nil }
        let callers = items.map { item -> String? in
            guard let text = reader.string(item, expected: expected) else { return nil }
            if text.hasPrefix("spiffe://") { return text }
            let allowed = !text.isEmpty && text.utf8.allSatisfy {
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "*")
            }
            guard allowed else {
                reader.reportExpected(expected, got: item)
                return nil
            }
            return text
        }
        return callers.contains { $0 == nil } ? nil : callers.compactMap { $0 }
    }

    private mutating func grpcAuthorization(_ node: ConfigNode) -> GRPCAuthorizationMatch? {
        guard let fields = reader.mapping(node, keys: ["service", "methods"]) else { return nil }
        let service = reader.required("service", in: fields, hint: "add the fully qualified service, e.g. \"service: user.UserService\"")
            .flatMap { grpcName($0, expected: "a fully qualified service name such as user.UserService") }
        let methods = fields["methods"]
            .flatMap { reader.list($0, of: "methods", atLeastOne: "method such as GetUser, or remove methods for all of them") }
            .map { $0.map { grpcName($0, expected: "a method name such as GetUser") } }
        guard let service, !fields.has("methods") || (methods.map { !$0.contains { $0 == nil } } ?? false) else { return nil }
        return GRPCAuthorizationMatch(service: service, methods: methods?.compactMap { $0 } ?? [])
    }

    /// Exact paths, or prefixes that end in `*`.
    private mutating func pathPatterns(_ node: ConfigNode) -> [String]? {
        guard let items = reader.list(node, of: "paths", atLeastOne: "path such as /healthz or /api/*") else { return nil }
        let paths = items.map { item -> String? in
            guard let path = requestPath(item) else { return nil }
            if path.dropLast().contains("*") {
                reader.report(item.path, "\(NodeReader.quoted(path)): * may only end a path, as in /api/*")
                return nil
            }
            return path
        }
        return paths.contains { $0 == nil } ? nil : paths.compactMap { $0 }
    }
}
