/// Distributed tracing: a span per proxied request, exported over OTLP
/// HTTP/protobuf (see docs/operations.md, "Tracing"); absent from the
/// config: no spans, and trace headers pass through untouched.
public struct TracingConfig: Sendable, Equatable {
    /// Where spans go: an OTLP HTTP receiver (an OpenTelemetry Collector,
    /// Jaeger, Tempo). A URL without a path gets `/v1/traces`, as the
    /// OpenTelemetry SDKs do with `OTEL_EXPORTER_OTLP_ENDPOINT`; one with a
    /// path is used as it is.
    public var otlpEndpoint: String
    /// The share of requests traced when the caller made no decision (a
    /// trace context with its sampled flag is followed either way).
    public var sampling: FaultShare
    /// The `service.name` of every span's resource.
    public var serviceName: String

    public static let defaultServiceName = "swiftmesh"
    public static let tracesPath = "/v1/traces"

    public init(otlpEndpoint: String, samplingRate: Double = 1, serviceName: String = TracingConfig.defaultServiceName) {
        self.otlpEndpoint = otlpEndpoint
        sampling = FaultShare(percent: samplingRate * 100)
        self.serviceName = serviceName
    }

    /// From 0 (only callers' sampled traces) to 1 (every request).
    public var samplingRate: Double { sampling.percent / 100 }

    /// The URL spans are posted to.
    public var tracesURL: String {
        guard let endpoint = Self.parse(otlpEndpoint) else { return otlpEndpoint }
        return endpoint.path.isEmpty || endpoint.path == "/"
            ? endpoint.base + Self.tracesPath : otlpEndpoint
    }

    /// Why `url` cannot be an OTLP endpoint, or nil when it can.
    public static func problem(inEndpoint url: String) -> String? {
        guard let endpoint = parse(url) else {
            return "is not an http:// or https:// URL; use e.g. \"http://127.0.0.1:4318\""
        }
        if endpoint.host.isEmpty {
            return "has no host; use e.g. \"http://127.0.0.1:4318\""
        }
        if url.contains("?") || url.contains("#") {
            return "has a query or fragment; give the receiver's URL alone, e.g. \"http://127.0.0.1:4318\""
        }
        return nil
    }

    /// `scheme://authority` and the path after it.
    private static func parse(_ url: String) -> (base: String, host: Substring, path: Substring)? {
        let schemes = ["http://", "https://"]
        guard let scheme = schemes.first(where: { url.lowercased().hasPrefix($0) }) else { return nil }
        let rest = url.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" }
        let host = authority.hasPrefix("[") ? authority.prefix { $0 != "]" } : authority.prefix { $0 != ":" }
        return (String(url.prefix(scheme.count + authority.count)), host, rest.dropFirst(authority.count))
    }
}
