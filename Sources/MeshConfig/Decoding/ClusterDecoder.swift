extension ProxyConfigDecoder {
    mutating func cluster(_ node: ConfigNode) -> ClusterConfig? {
        guard let fields = reader.mapping(
            node, keys: ["name", "service", "protocol"] + Self.clusterSettingsKeys + ["tls", "endpoints", "dns"]
        ) else { return nil }
        let name = reader.required("name", in: fields, hint: "add e.g. \"name: user\"")
            .flatMap { definedName($0, recordIn: \.clusterNames) }
        let service = fields["service"].flatMap { serviceName($0) }
        let protocolKind = fields["protocol"].flatMap { reader.choice($0, of: UpstreamProtocol.self) }
        let settings = clusterSettings(
            fields, defaults: .proxyDefaults, probeProtocol: fields.has("protocol") ? protocolKind : .http1)
        let tls = fields["tls"].flatMap { clusterTLS($0) }
        let endpoints = fields["endpoints"].flatMap { staticEndpoints($0) }
        let dns = fields["dns"].flatMap { dnsDiscovery($0) }

        switch (fields.has("endpoints"), fields.has("dns")) {
        case (true, true):
            reader.report(fields.path, "has both endpoints and dns; keep one (endpoints lists fixed IP addresses, dns resolves a name)")
        case (false, false):
            reader.report(fields.path, "has neither endpoints nor dns; add e.g. \"endpoints: [127.0.0.1:8080]\" or \"dns: { name: user.svc, port: 8080 }\"")
        default:
            break
        }
        let discovery = endpoints.map(EndpointDiscovery.staticEndpoints) ?? dns.map(EndpointDiscovery.dns)

        guard let name, let discovery, let settings else { return nil }
        if fields.has("tls") && tls == nil || fields.has("service") && service == nil {
            return nil
        }
        return ClusterConfig(
            name: name, service: service, protocolKind: protocolKind ?? .http1, discovery: discovery,
            settings: settings.resolved(over: .proxyDefaults), tls: tls)
    }

    private mutating func staticEndpoints(_ node: ConfigNode) -> [StaticEndpoint]? {
        guard let items = reader.list(node, of: "endpoints", atLeastOne: "endpoint such as 127.0.0.1:8080") else {
            return nil
        }
        return items.compactMap { staticEndpoint($0) }
    }

    /// `127.0.0.1:8080` or `{ address: 127.0.0.1:8080, weight: 2 }`.
    private mutating func staticEndpoint(_ node: ConfigNode) -> StaticEndpoint? {
        switch node.node {
        case .scalar where !NodeReader.isNull(node.node):
            return endpointAddress(node).map { StaticEndpoint(address: $0) }
        case .mapping:
            guard let fields = reader.mapping(node, keys: ["address", "weight"]) else { return nil }
            let address = reader.required("address", in: fields, hint: "add e.g. \"address: 127.0.0.1:8080\"")
                .flatMap { endpointAddress($0) }
            let weight = fields["weight"].flatMap { self.weight($0) }
            guard let address else { return nil }
            return StaticEndpoint(address: address, weight: weight ?? 1)
        default:
            reader.reportExpected("an address such as 127.0.0.1:8080 or { address: 127.0.0.1:8080, weight: 2 }", got: node)
            return nil
        }
    }

    private mutating func endpointAddress(_ node: ConfigNode) -> HostPort? {
        reader.ipAddress(node) { address in
            "static endpoints must be IP addresses; to resolve \(NodeReader.quoted(address.host)), replace endpoints with dns: { name: \(address.host), port: \(address.port) }"
        }
    }

    private mutating func dnsDiscovery(_ node: ConfigNode) -> DNSDiscovery? {
        guard let fields = reader.mapping(node, keys: ["name", "port", "refresh", "resolver", "family"]) else { return nil }
        let name = reader.required("name", in: fields, hint: "add the name to resolve, e.g. \"name: user.default.svc.cluster.local\"")
            .flatMap { dnsName($0) }
        let port = reader.required("port", in: fields, hint: "add the port the endpoints serve on, e.g. \"port: 8080\"")
            .flatMap { reader.port($0) }
        // Re-resolving faster than this would load the DNS server for no
        // benefit: records rarely change that quickly.
        let refresh = fields["refresh"].flatMap { reader.duration($0, atLeast: .milliseconds(100)) }
        let resolver = fields["resolver"].flatMap { resolverNode in
            reader.ipAddress(resolverNode) { _ in
                "the resolver must be an IP address, since finding it by name would itself need DNS"
            }
        }
        let family = fields["family"].flatMap { reader.choice($0, of: DNSDiscovery.Family.self) }
        guard let name, let port, !fields.has("family") || family != nil else { return nil }
        return DNSDiscovery(
            name: name, port: port, refresh: refresh ?? DNSDiscovery.defaultRefresh, resolver: resolver,
            family: family ?? .auto)
    }

    private mutating func dnsName(_ node: ConfigNode) -> String? {
        let expectation = "a DNS name such as user.default.svc.cluster.local"
        guard let text = reader.string(node, expected: expectation) else { return nil }
        if DNSNameSyntax.isValid(Substring(text)) {
            return text
        }
        let hint: String
        if HostPortSyntax.isIPLiteral(text) {
            hint = ": an IP address needs no resolving; list it under endpoints instead of dns"
        } else if let address = HostPortSyntax.parse(text) {
            hint = ": put the port in its own key, port: \(address.port)"
        } else {
            hint = ""
        }
        reader.report(node.path, "expected \(expectation), got \(NodeReader.describe(node.node))\(hint)")
        return nil
    }
}
