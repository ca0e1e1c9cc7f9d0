extension ProxyConfigDecoder {
    mutating func match(_ node: ConfigNode) -> RouteMatch? {
        guard let fields = reader.mapping(node, keys: ["pathPrefix", "path", "methods", "headers", "grpc"]) else {
            return nil
        }
        let pathPrefix = fields["pathPrefix"].flatMap { requestPath($0) }
        let path = fields["path"].flatMap { requestPath($0) }
        let methods = fields["methods"].flatMap { self.methods($0) }
        let headers = fields["headers"]
            .flatMap { reader.list($0, of: "header conditions") }
            .map { $0.compactMap { headerMatch($0) } }
        let grpc = fields["grpc"].flatMap { self.grpc($0) }

        if fields.has("path"), fields.has("pathPrefix") {
            reader.report(fields.path, "has both path and pathPrefix; keep one (path matches one exact path, pathPrefix every path under it)")
        }
        if fields.has("grpc"), fields.has("path") || fields.has("pathPrefix") {
            reader.report(fields.path.key("grpc"), "cannot be combined with path or pathPrefix, since it already matches the path /<service>/<method>; remove one or the other")
        }
        return RouteMatch(pathPrefix: pathPrefix, path: path, methods: methods, headers: headers ?? [], grpc: grpc)
    }

    /// Paths are matched without the query string, so a `?` could never match.
    mutating func requestPath(_ node: ConfigNode) -> String? {
        guard let text = reader.string(node, expected: "a path starting with \"/\"") else { return nil }
        guard text.hasPrefix("/") else {
            reader.reportExpected("a path starting with \"/\"", got: node)
            return nil
        }
        guard !text.contains("?") else {
            reader.report(node.path, "paths are matched without the query string; remove the \"?\" and what follows from \(NodeReader.quoted(text))")
            return nil
        }
        return text
    }

    /// HTTP method tokens, upper-cased: methods are case-sensitive on the
    /// wire and every standard one is upper case.
    mutating func methods(_ node: ConfigNode) -> [String]? {
        guard let items = reader.list(
            node,
            of: "HTTP methods",
            atLeastOne: "method such as GET, or remove methods to match any method"
        ) else { return nil }
        return items.compactMap { item -> String? in
            guard let text = reader.string(item, expected: "an HTTP method such as GET") else { return nil }
            guard HeaderNameSyntax.isToken(text) else {
                reader.reportExpected("an HTTP method such as GET", got: item)
                return nil
            }
            return text.uppercased()
        }
    }

    private mutating func headerMatch(_ node: ConfigNode) -> HeaderMatch? {
        guard let fields = reader.mapping(node, keys: ["name", "exact", "prefix", "present"]) else { return nil }
        let name = reader.required("name", in: fields, hint: "add the header to test, e.g. \"name: x-canary\"")
            .flatMap { reader.headerName($0) }
        let conditionKeys = ["exact", "prefix", "present"].filter { fields.has($0) }
        let exact = fields["exact"].flatMap { reader.string($0, expected: "a header value") }
        let prefix = fields["prefix"].flatMap { reader.string($0, expected: "a header value prefix") }
        let present = fields["present"].flatMap { reader.bool($0) }

        guard conditionKeys.count == 1 else {
            if conditionKeys.isEmpty {
                reader.report(fields.path, "has no condition; add one of exact, prefix or present, e.g. \"exact: \\\"1\\\"\"")
            } else {
                reader.report(fields.path, "has \(conditionKeys.joined(separator: " and ")); keep exactly one of exact, prefix or present")
            }
            return nil
        }
        let condition: HeaderMatch.Condition? =
            if let exact { .exact(exact) } else if let prefix { .prefix(prefix) } else { present.map(HeaderMatch.Condition.present) }
        guard let name, let condition else { return nil }
        return HeaderMatch(name: name, condition: condition)
    }

    private mutating func grpc(_ node: ConfigNode) -> GRPCMatch? {
        guard let fields = reader.mapping(node, keys: ["service", "method"]) else { return nil }
        let service = reader.required("service", in: fields, hint: "add the fully qualified service, e.g. \"service: user.UserService\"")
            .flatMap { grpcName($0, expected: "a fully qualified service name such as user.UserService") }
        let method = fields["method"].flatMap { grpcName($0, expected: "a method name such as GetUser") }
        guard let service else { return nil }
        return GRPCMatch(service: service, method: method)
    }

    /// gRPC names become path segments (`/<service>/<method>`), so they must
    /// not contain `/` or spaces.
    mutating func grpcName(_ node: ConfigNode, expected: String) -> String? {
        guard let text = reader.string(node, expected: expected) else { return nil }
        guard !text.isEmpty, !text.contains(where: { $0 == "/" || $0.isWhitespace }) else {
            reader.reportExpected(expected, got: node)
            return nil
        }
        return text
    }
}
