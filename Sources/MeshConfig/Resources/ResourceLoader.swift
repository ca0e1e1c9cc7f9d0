import Yams

/// The way in for mesh resources: YAML (one or several documents, as
/// `swiftmesh apply -f` sends them) to validated resources, or every issue
/// found; and the JSON of one ServicePolicy spec, as a snapshot carries it.
public enum ResourceLoader {
    /// Every document of `yaml` as a resource. With several documents, issue
    /// paths start with the document's index: `documents[1].spec.routes[0].timeout`.
    public static func decode(yaml: String) throws(ConfigErrors) -> [MeshResource] {
        let documents: [Node]
        do {
            documents = try Array(Yams.compose_all(yaml: yaml, .default, .default, .utf8))
        } catch {
            throw ConfigErrors(issues: [YAMLSyntaxIssue.issue(for: error)])
        }
        guard !documents.isEmpty else {
            throw ConfigErrors(issues: [ConfigIssue(path: "", message: "no resources; write at least one, such as a ServicePolicy")])
        }
        var decoder = ProxyConfigDecoder()
        var resources: [MeshResource] = []
        var paths: [FieldPath] = []
        for (index, document) in documents.enumerated() {
            let path = documents.count == 1 ? FieldPath.root : FieldPath.root.key("documents").index(index)
            if let resource = decoder.resource(ConfigNode(node: document, path: path)) {
                resources.append(resource)
                paths.append(path)
            }
        }
        checkUnique(resources, paths: paths, reader: &decoder.reader)
        if !decoder.reader.issues.isEmpty {
            throw ConfigErrors(issues: decoder.reader.issues)
        }
        return resources
    }

    /// A ServicePolicy spec rendered by `ServicePolicyJSON`.
    public static func decodePolicy(json: String) throws(ConfigErrors) -> ServicePolicy {
        try decodeSpec(json: json) { $0.servicePolicy($1) }
    }

    /// An AuthorizationPolicy spec rendered by `AuthorizationPolicyJSON`.
    public static func decodeAuthorizationPolicy(json: String) throws(ConfigErrors) -> AuthorizationPolicy {
        try decodeSpec(json: json) { $0.authorizationPolicy($1) }
    }

    /// A resource's spec as JSON (a YAML subset), decoded like the spec of an applied resource.
    private static func decodeSpec<Spec>(
        json: String, _ decode: (inout ProxyConfigDecoder, ConfigNode) -> Spec?
    ) throws(ConfigErrors) -> Spec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: json, .default, .default, .utf8)
        } catch {
            throw ConfigErrors(issues: [YAMLSyntaxIssue.issue(for: error)])
        }
        guard let root else {
            throw ConfigErrors(issues: [ConfigIssue(path: "", message: "the policy is empty")])
        }
        var decoder = ProxyConfigDecoder()
        let spec = decode(&decoder, ConfigNode(node: root, path: .root))
        guard let spec, decoder.reader.issues.isEmpty else {
            throw ConfigErrors(issues: decoder.reader.issues)
        }
        return spec
    }

    /// One apply names each resource once, and gives each service one resource of each kind.
    private static func checkUnique(_ resources: [MeshResource], paths: [FieldPath], reader: inout NodeReader) {
        var seen: [String: FieldPath] = [:]
        var holderOf: [String: String] = [:]
        for (resource, path) in zip(resources, paths) {
            let key = "\(resource.kind.rawValue)/\(resource.name)"
            if let first = seen[key] {
                reader.report(path.key("metadata").key("name"), "\(key) is also defined at \(first.description.isEmpty ? "the first document" : first.description); apply each resource once")
            }
            seen[key] = seen[key] ?? path
            let serviceKey = "\(resource.kind.rawValue)/\(resource.service)"
            if let other = holderOf[serviceKey], other != resource.name {
                reader.report(path.key("spec").key("service"), "\(resource.service) already has \(resource.kind.rawValue) \(other) in this apply; a service has one")
            }
            holderOf[serviceKey] = holderOf[serviceKey] ?? resource.name
        }
    }
}
