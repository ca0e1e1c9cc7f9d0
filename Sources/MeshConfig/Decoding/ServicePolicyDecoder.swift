extension ProxyConfigDecoder {
    /// A ServicePolicy's `spec`. Cluster-level keys mean what they mean for a
    /// cluster; routes are the proxy's routes with services and subsets as
    /// destinations.
    mutating func servicePolicy(_ node: ConfigNode) -> ServicePolicy? {
        guard let fields = reader.mapping(node, keys: ["service"] + Self.clusterSettingsKeys + ["routes"]) else {
            return nil
        }
        let service = reader.required("service", in: fields, hint: "add the service the policy is for, e.g. \"service: user\"")
            .flatMap { serviceName($0) }
        // Sidecars reach each other over HTTP/2, so probes do too.
        let settings = clusterSettings(fields, defaults: .meshDefaults, probeProtocol: .http2)
        let routes = fields["routes"].flatMap { reader.list($0, of: "routes") }
            .map { $0.compactMap { policyRoute($0, service: service) } }
        guard let service, let settings else { return nil }
        return ServicePolicy(service: service, settings: settings, routes: routes ?? [])
    }

    /// A service name where one is written: a DNS label.
    mutating func serviceName(_ node: ConfigNode) -> String? {
        guard let text = reader.string(node, expected: "a service name") else { return nil }
        if let problem = ServiceNameSyntax.problem(text) {
            reader.report(node.path, problem)
            return nil
        }
        return text
    }

    private mutating func policyRoute(_ node: ConfigNode, service: String?) -> PolicyRoute? {
        guard let fields = reader.mapping(
            node,
            keys: ["match", "timeout", "retries", "fault", "requestHeadersToAdd", "requestHeadersToRemove", "split"]
        ) else { return nil }
        let match: RouteMatch? = if let matchNode = fields["match"] { self.match(matchNode) } else { RouteMatch() }
        let timeout = fields["timeout"].flatMap { reader.positiveDuration($0) }
        let retries = fields["retries"].flatMap { self.retryPolicy($0) }
        let fault = fields["fault"].flatMap { self.fault($0) }
        let headersToAdd = fields["requestHeadersToAdd"].flatMap { self.headersToAdd($0) }
        let headersToRemove = fields["requestHeadersToRemove"].flatMap { self.headersToRemove($0) }
        let split = fields["split"]
            .flatMap { reader.list($0, of: "destinations", atLeastOne: "destination such as { subset: { version: v1 }, weight: 90 }") }
            .map { $0.compactMap { destination($0, service: service) } }
        guard let match else { return nil }
        return PolicyRoute(
            match: match, timeout: timeout, retries: retries, fault: fault, requestHeadersToAdd: headersToAdd ?? [],
            requestHeadersToRemove: headersToRemove ?? [], split: split)
    }

    private mutating func destination(_ node: ConfigNode, service: String?) -> PolicyDestination? {
        guard let fields = reader.mapping(node, keys: ["service", "subset", "weight"]) else { return nil }
        let destinationService = fields["service"].flatMap { serviceName($0) } ?? service
        let subset = fields["subset"].flatMap { labels($0) }
        let weight = reader.required("weight", in: fields, hint: "add the destination's relative share, e.g. \"weight: 10\"")
            .flatMap { self.weight($0) }
        guard let destinationService, let weight else { return nil }
        return PolicyDestination(service: destinationService, subset: subset ?? [:], weight: weight)
    }

    /// Instance labels to select on, such as `{ version: v1 }`.
    private mutating func labels(_ node: ConfigNode) -> [String: String]? {
        guard let entries = reader.entries(node, expected: "a mapping of label names to values, such as { version: v1 }") else {
            return nil
        }
        var labels: [String: String] = [:]
        for (key, value) in entries {
            if let text = reader.string(value, expected: "a label value") {
                labels[key] = text
            }
        }
        return labels
    }
}
