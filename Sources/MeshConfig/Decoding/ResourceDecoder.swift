extension ProxyConfigDecoder {
    /// One resource in its envelope: `apiVersion`, `kind`, `metadata.name`,
    /// `spec`. A `status` is what the control plane computed when it showed
    /// the resource (a policy's effective settings): ignored, so that what
    /// `get -o yaml` prints applies again as it is.
    mutating func resource(_ node: ConfigNode) -> MeshResource? {
        guard let fields = reader.mapping(node, keys: ["apiVersion", "kind", "metadata", "spec", "status"]) else {
            return nil
        }
        if let versionNode = reader.required("apiVersion", in: fields, hint: "add \"apiVersion: \(MeshResource.apiVersion)\""),
           let version = reader.string(versionNode, expected: "an API version"), version != MeshResource.apiVersion {
            reader.report(versionNode.path, "\(NodeReader.quoted(version)) is not an API version of SwiftMesh; use \(MeshResource.apiVersion)")
        }
        let kind = reader.required("kind", in: fields, hint: "add e.g. \"kind: ServicePolicy\"")
            .flatMap { reader.choice($0, of: MeshResource.Kind.self) }
        let name = reader.required("metadata", in: fields, hint: "add e.g. \"metadata: { name: user }\"")
            .flatMap { reader.mapping($0, keys: ["name"]) }
            .flatMap { reader.required("name", in: $0, hint: "add e.g. \"name: user\"") }
            .flatMap { resourceName($0) }
        let specNode = reader.required("spec", in: fields, hint: "add the resource's spec")
        guard let kind, let name, let specNode else { return nil }
        switch kind {
        case .servicePolicy:
            return servicePolicy(specNode).map { MeshResource(name: name, spec: .servicePolicy($0)) }
        case .authorizationPolicy:
            return authorizationPolicy(specNode).map { MeshResource(name: name, spec: .authorizationPolicy($0)) }
        }
    }

    /// Resource names follow the rule of service names (DNS labels), so a
    /// name is safe in a URL path and on a command line.
    private mutating func resourceName(_ node: ConfigNode) -> String? {
        guard let text = reader.string(node, expected: "a resource name") else { return nil }
        if ServiceNameSyntax.problem(text) != nil {
            reader.report(node.path, "\(NodeReader.quoted(text)) is not a resource name; use lower-case letters, digits and inner dashes, at most 63")
            return nil
        }
        return text
    }
}
