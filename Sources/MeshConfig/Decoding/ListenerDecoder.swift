extension ProxyConfigDecoder {
    mutating func listener(_ node: ConfigNode) -> ListenerConfig? {
        guard let fields = reader.mapping(node, keys: [
            "name", "listen", "limits", "idleTimeout", "tls", "authorization", "direction", "pathNormalization", "routes",
        ]) else { return nil }
        let name = reader.required("name", in: fields, hint: "add e.g. \"name: ingress\"")
            .flatMap { definedName($0, recordIn: \.listenerNames) }
        let listen = reader.required("listen", in: fields, hint: "add e.g. \"listen: 127.0.0.1:8080\"")
            .flatMap { listenAddress($0) }
        let limits = fields["limits"].flatMap { self.limits($0) }
        let idleTimeout = fields["idleTimeout"].flatMap { reader.positiveDuration($0) }
        let tls = fields["tls"].flatMap { listenerTLS($0) }
        let authorization = fields["authorization"].flatMap { listenerAuthorization($0) }
        let direction = fields["direction"].flatMap { reader.choice($0, of: TrafficDirection.self) }
        let pathNormalization = fields["pathNormalization"].flatMap {
            self.pathNormalization($0, defaults: PathNormalizationConfig(authorized: fields.has("authorization")))
        }
        let routes = reader.required("routes", in: fields, hint: "add at least one route")
            .flatMap { reader.list($0, of: "routes", atLeastOne: "route") }
            .map { $0.compactMap { route($0) } }

        guard let name, let listen, let routes else { return nil }
        if fields.has("tls") && tls == nil || fields.has("authorization") && authorization == nil
            || fields.has("direction") && direction == nil || fields.has("pathNormalization") && pathNormalization == nil {
            return nil
        }
        return ListenerConfig(
            name: name, listen: listen, routes: routes, limits: limits ?? ListenerLimits(),
            idleTimeout: idleTimeout ?? ListenerConfig.defaultIdleTimeout, tls: tls, authorization: authorization,
            direction: direction ?? .outbound, pathNormalization: pathNormalization
        )
    }

    private mutating func pathNormalization(
        _ node: ConfigNode, defaults: PathNormalizationConfig
    ) -> PathNormalizationConfig? {
        guard let fields = reader.mapping(node, keys: ["enabled", "mergeSlashes", "escapedSlashes"]) else {
            return nil
        }
        let enabled = fields["enabled"].flatMap { reader.bool($0) }
        let mergeSlashes = fields["mergeSlashes"].flatMap { reader.bool($0) }
        let escapedSlashes = fields["escapedSlashes"].flatMap {
            reader.choice($0, of: PathNormalizationConfig.EscapedSlashes.self)
        }
        if fields.has("enabled") && enabled == nil || fields.has("mergeSlashes") && mergeSlashes == nil
            || fields.has("escapedSlashes") && escapedSlashes == nil {
            return nil
        }
        return PathNormalizationConfig(
            enabled: enabled ?? defaults.enabled, mergeSlashes: mergeSlashes ?? defaults.mergeSlashes,
            escapedSlashes: escapedSlashes ?? defaults.escapedSlashes)
    }

    private mutating func limits(_ node: ConfigNode) -> ListenerLimits? {
        guard let fields = reader.mapping(node, keys: [
            "maxRequestHeaderBytes", "maxRequestHeaders", "maxConcurrentStreams", "perConnectionBufferLimitBytes",
            "requestHeadersTimeout", "streamIdleTimeout", "maxShareOfClusterRequests",
        ]) else {
            return nil
        }
        let defaults = ListenerLimits()
        var limits = defaults
        if let node = fields["maxRequestHeaderBytes"] {
            limits.maxRequestHeaderBytes = reader.positiveInt(node) ?? defaults.maxRequestHeaderBytes
        }
        if let node = fields["maxRequestHeaders"] {
            limits.maxRequestHeaders = reader.positiveInt(node) ?? defaults.maxRequestHeaders
        }
        if let node = fields["maxConcurrentStreams"] {
            // RFC 9113 section 6.5.2: the setting is a 31-bit stream count.
            limits.maxConcurrentStreams = reader.positiveInt(node, maximum: Int(Int32.max)) ?? defaults.maxConcurrentStreams
        }
        if let node = fields["perConnectionBufferLimitBytes"] {
            // RFC 9113 section 6.9.1: a flow-control window is at most 2^31-1.
            limits.perConnectionBufferLimitBytes = reader.positiveInt(node, maximum: Int(Int32.max)).flatMap { bytes in
                guard bytes >= ListenerLimits.minPerConnectionBufferLimitBytes else {
                    reader.report(node.path, "is \(bytes) bytes; it must be at least \(ListenerLimits.minPerConnectionBufferLimitBytes) (16 KiB), the size of one HTTP/2 frame, so every stream can make progress")
                    return nil
                }
                return bytes
            } ?? defaults.perConnectionBufferLimitBytes
        }
        if let node = fields["requestHeadersTimeout"] {
            limits.requestHeadersTimeout = reader.positiveDuration(node) ?? defaults.requestHeadersTimeout
        }
        if let node = fields["streamIdleTimeout"] {
            limits.streamIdleTimeout = reader.positiveDuration(node) ?? defaults.streamIdleTimeout
        }
        if let node = fields["maxShareOfClusterRequests"] {
            limits.maxShareOfClusterRequests = reader.positiveInt(node, maximum: 100) ?? defaults.maxShareOfClusterRequests
        }
        return limits
    }
}
