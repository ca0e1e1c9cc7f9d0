import Yams

/// Turns a composed YAML document into a `ProxyConfig`, walking the node tree
/// itself so that every issue names the field path of the value at fault.
///
/// The decoder checks each value where it stands: its shape, syntax and range,
/// and the rules between fields of one object (a route has exactly one of
/// `cluster` and `split`). Rules between different places in the document
/// (routes name existing clusters; names and addresses are unique) need the
/// whole document, so the decoder records what they need in `facts` and
/// `DocumentRules` checks them afterwards.
///
/// Decoding carries on past every issue so that one run reports them all; the
/// returned config is meaningful only when `reader.issues` is empty.
struct ProxyConfigDecoder {
    var reader = NodeReader()
    var facts = DocumentFacts()

    mutating func decode(document root: Node?) -> ProxyConfig? {
        guard let root else {
            reader.report(.root, "the document is empty; a config needs at least listeners and clusters")
            return nil
        }
        guard let top = reader.mapping(
            ConfigNode(node: root, path: .root),
            keys: ["admin", "drainTimeout", "accessLog", "tracing", "listeners", "clusters"]
        ) else { return nil }

        // Admin first: its address is recorded before the listeners', so a
        // listener that reuses it is the one reported.
        let admin = top["admin"].flatMap { self.admin($0) }
        let drainTimeout = top["drainTimeout"].flatMap { reader.duration($0) }
        let accessLog = top["accessLog"].flatMap { self.accessLog($0) }
        let tracing = top["tracing"].flatMap { self.tracing($0) }
        let listeners = reader.required("listeners", in: top, hint: "add at least one listener")
            .flatMap { reader.list($0, of: "listeners", atLeastOne: "listener") }
            .map { $0.compactMap { self.listener($0) } }
        let clusters = reader.required("clusters", in: top, hint: "add the clusters that routes send requests to")
            .flatMap { reader.list($0, of: "clusters") }
            .map { $0.compactMap { self.cluster($0) } }

        guard let listeners, let clusters else { return nil }
        return ProxyConfig(
            admin: admin,
            listeners: listeners,
            clusters: clusters,
            drainTimeout: drainTimeout ?? ProxyConfig.defaultDrainTimeout,
            accessLog: accessLog,
            tracing: tracing
        )
    }

    /// `accessLog: { path: stdout | FILE, samplePercent: 0-100 }`.
    private mutating func accessLog(_ node: ConfigNode) -> AccessLogConfig? {
        guard let fields = reader.mapping(node, keys: ["path", "samplePercent"]) else { return nil }
        guard let pathNode = reader.required(
            "path", in: fields, hint: "add \"path: stdout\" or the file to append to, e.g. \"path: /var/log/swiftmesh/access.log\""),
              let path = reader.string(pathNode, expected: "\"stdout\" or a file path") else { return nil }
        guard !path.isEmpty else {
            reader.report(pathNode.path, "is empty; use \"stdout\" or a file path")
            return nil
        }
        let sample = fields["samplePercent"].flatMap { reader.percent($0) }
        if fields.has("samplePercent") && sample == nil { return nil }
        var config = AccessLogConfig(destination: .init(path: path))
        config.sample = sample ?? config.sample
        return config
    }

    /// `tracing: { otlpEndpoint: URL, samplingRate: 0-1, serviceName: NAME }`.
    private mutating func tracing(_ node: ConfigNode) -> TracingConfig? {
        guard let fields = reader.mapping(node, keys: ["otlpEndpoint", "samplingRate", "serviceName"]) else { return nil }
        let endpoint = reader.required(
            "otlpEndpoint", in: fields, hint: "add the OTLP HTTP receiver, e.g. \"otlpEndpoint: http://127.0.0.1:4318\"")
            .flatMap { node -> String? in
                guard let url = reader.string(node, expected: "an http:// URL") else { return nil }
                if let problem = TracingConfig.problem(inEndpoint: url) {
                    reader.report(node.path, problem)
                    return nil
                }
                return url
            }
        let rate = fields["samplingRate"].flatMap {
            reader.number($0, in: 0...1, expected: "a rate from 0 to 1 (1 traces every request, 0.01 one in a hundred)")
        }
        let serviceName = fields["serviceName"].flatMap { reader.string($0, expected: "a service name") }
        if let serviceName, serviceName.isEmpty, let node = fields["serviceName"] {
            reader.report(node.path, "is empty; name the service the spans belong to, e.g. \"serviceName: gateway\"")
            return nil
        }
        guard let endpoint else { return nil }
        if fields.has("samplingRate") && rate == nil || fields.has("serviceName") && serviceName == nil { return nil }
        return TracingConfig(
            otlpEndpoint: endpoint, samplingRate: rate ?? 1, serviceName: serviceName ?? TracingConfig.defaultServiceName)
    }

    private mutating func admin(_ node: ConfigNode) -> AdminConfig? {
        guard let fields = reader.mapping(node, keys: ["listen"]) else { return nil }
        guard let listenNode = reader.required("listen", in: fields, hint: "add e.g. \"listen: 127.0.0.1:9901\""),
              let listen = listenAddress(listenNode) else { return nil }
        return AdminConfig(listen: listen)
    }

    /// Balancers add weights up (split entries, endpoints); this bound keeps
    /// any realistic sum far from overflow and is more than any share needs.
    static let maximumWeight = 1_000_000

    mutating func weight(_ node: ConfigNode) -> Int? {
        reader.positiveInt(node, maximum: Self.maximumWeight)
    }

    /// A listener or cluster name, recorded in `names` for the uniqueness
    /// and reference rules.
    mutating func definedName(_ node: ConfigNode, recordIn names: WritableKeyPath<DocumentFacts, [Located<String>]>) -> String? {
        let name = reader.name(node)
        if let name {
            facts[keyPath: names].append(Located(value: name, path: node.path))
        }
        return name
    }

    /// An address to bind, recorded for the uniqueness rule.
    mutating func listenAddress(_ node: ConfigNode) -> HostPort? {
        let address = reader.ipAddress(node) { address in
            "\(NodeReader.quoted(address.host)) is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0"
        }
        if let address {
            facts.listenAddresses.append(Located(value: address, path: node.path))
        }
        return address
    }
}
