extension ProxyConfigDecoder {
    /// `healthCheck: { grpc: { service } | http: { path, expectedStatuses } | tcp: {},
    /// interval, timeout, unhealthyThreshold, healthyThreshold }`.
    mutating func healthCheck(_ node: ConfigNode, protocolKind: UpstreamProtocol?) -> HealthCheckConfig? {
        guard let fields = reader.mapping(
            node, keys: ["grpc", "http", "tcp", "interval", "timeout", "unhealthyThreshold", "healthyThreshold"]
        ) else { return nil }
        typealias Defaults = HealthCheckConfig
        let interval = fields["interval"].map { reader.positiveDuration($0) } ?? Defaults.defaultInterval
        let timeout = fields["timeout"].map { reader.positiveDuration($0) } ?? Defaults.defaultTimeout
        let unhealthyThreshold = fields["unhealthyThreshold"].map { reader.positiveInt($0, maximum: 100) }
            ?? Defaults.defaultUnhealthyThreshold
        let healthyThreshold = fields["healthyThreshold"].map { reader.positiveInt($0, maximum: 100) }
            ?? Defaults.defaultHealthyThreshold

        let kinds = ["grpc", "http", "tcp"].filter { fields.has($0) }
        var probe: HealthCheckConfig.Probe?
        switch kinds.first {
        case _ where kinds.count > 1:
            reader.report(fields.path, "has \(kinds.joined(separator: " and ")); keep one kind of probe")
        case nil:
            reader.report(fields.path, "has no probe; add one of grpc: { service: \"\" }, http: { path: /healthz } or tcp: {}")
        case "grpc":
            probe = fields["grpc"].flatMap { grpcProbe($0, protocolKind: protocolKind) }
        case "http":
            probe = fields["http"].flatMap { httpProbe($0) }
        default:
            probe = fields["tcp"].flatMap { reader.mapping($0, keys: []) }.map { _ in .tcp }
        }
        guard let probe, let interval, let timeout, let unhealthyThreshold, let healthyThreshold else { return nil }
        return HealthCheckConfig(
            probe: probe, interval: interval, timeout: timeout, unhealthyThreshold: unhealthyThreshold,
            healthyThreshold: healthyThreshold)
    }

    private mutating func grpcProbe(_ node: ConfigNode, protocolKind: UpstreamProtocol?) -> HealthCheckConfig.Probe? {
        guard let fields = reader.mapping(node, keys: ["service"]) else { return nil }
        let service = fields["service"].map { reader.string($0, expected: "a gRPC service name, or \"\" for the whole server") } ?? ""
        guard let service else { return nil }
        if protocolKind == .http1 {
            reader.report(node.path, "gRPC runs on HTTP/2, but this cluster has protocol http1; set protocol: http2, or probe with http or tcp")
            return nil
        }
        return .grpc(service: service)
    }

    private mutating func httpProbe(_ node: ConfigNode) -> HealthCheckConfig.Probe? {
        guard let fields = reader.mapping(node, keys: ["path", "expectedStatuses"]) else { return nil }
        let path = reader.required("path", in: fields, hint: "add the path to GET, e.g. \"path: /healthz\"")
            .flatMap { reader.string($0, expected: "a path such as /healthz") }
        let statuses = fields["expectedStatuses"].map { node -> [Int]? in
            guard let entries = reader.list(node, of: "HTTP statuses", atLeastOne: "status such as 200") else { return nil }
            let codes = entries.compactMap { reader.integer($0, in: 100...599, expected: "an HTTP status 100-599") }
            return codes.count == entries.count ? codes : nil
        } ?? HealthCheckConfig.defaultExpectedStatuses
        guard let path, let statuses else { return nil }
        guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0.isNewline }) else {
            reader.report(fields.path.key("path"), "expected a path starting with / and without spaces, such as /healthz, got \(NodeReader.quoted(path))")
            return nil
        }
        return .http(path: path, expectedStatuses: statuses)
    }
}
