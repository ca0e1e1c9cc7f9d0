import Foundation

/// The effective config (defaults filled in) as JSON, for the admin endpoint
/// `GET /config`. Keys and values are spelled as in the YAML file (camelCase
/// keys, snake_case enum values, durations like `250ms`, addresses as
/// `host:port`), so what an operator reads there can be pasted back.
/// Keys with no value are left out: `admin`, a route's `timeout`,
/// `hashHeader` and `dns.resolver` when not set, empty header edits, and a
/// match's absent conditions (`"match": {}` matches every request). Every
/// key that has a default is present with its effective value.
public enum ConfigJSON {
    public static func render(_ config: ProxyConfig) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(DocumentJSON(config)), as: UTF8.self)
        } catch {
            // The document holds only strings, integers, booleans, arrays and
            // objects with string keys, none of which JSONEncoder rejects.
            preconditionFailure("encoding the effective config failed: \(error)")
        }
    }
}

// The shapes below mirror the YAML schema; the model types stay free of
// Codable so that JSON layout never leaks into the data plane's types.

private struct DocumentJSON: Encodable {
    var admin: AdminJSON?
    var drainTimeout: String
    var accessLog: AccessLogJSON?
    var tracing: TracingJSON?
    var listeners: [ListenerJSON]
    var clusters: [ClusterJSON]

    init(_ config: ProxyConfig) {
        admin = config.admin.map { AdminJSON(listen: $0.listen.description) }
        drainTimeout = config.drainTimeout.description
        accessLog = config.accessLog.map(AccessLogJSON.init)
        tracing = config.tracing.map { TracingJSON(otlpEndpoint: $0.otlpEndpoint, samplingRate: $0.samplingRate, serviceName: $0.serviceName) }
        listeners = config.listeners.map(ListenerJSON.init)
        clusters = config.clusters.map(ClusterJSON.init)
    }
}

private struct AdminJSON: Encodable {
    var listen: String
}

private struct AccessLogJSON: Encodable {
    var path: String
    var samplePercent: Double

    init(_ log: AccessLogConfig) {
        path = log.destination.path
        samplePercent = log.samplePercent
    }
}

private struct TracingJSON: Encodable {
    var otlpEndpoint: String
    var samplingRate: Double
    var serviceName: String
}

private struct ListenerJSON: Encodable {
    var name: String
    var listen: String
    var limits: LimitsJSON
    var idleTimeout: String
    var tls: ListenerTLSJSON?
    var authorization: ListenerAuthorizationJSON?
    var direction: String
    var pathNormalization: PathNormalizationJSON
    var routes: [RouteJSON]

    init(_ listener: ListenerConfig) {
        name = listener.name
        listen = listener.listen.description
        limits = LimitsJSON(listener.limits)
        idleTimeout = listener.idleTimeout.description
        tls = listener.tls.map(ListenerTLSJSON.init)
        authorization = listener.authorization.map(ListenerAuthorizationJSON.init)
        direction = listener.direction.rawValue
        pathNormalization = PathNormalizationJSON(
            enabled: listener.pathNormalization.enabled, mergeSlashes: listener.pathNormalization.mergeSlashes,
            escapedSlashes: listener.pathNormalization.escapedSlashes.rawValue)
        routes = listener.routes.map(RouteJSON.init)
    }
}

private struct PathNormalizationJSON: Encodable {
    var enabled: Bool
    var mergeSlashes: Bool
    var escapedSlashes: String
}

private struct LimitsJSON: Encodable {
    var maxRequestHeaderBytes: Int
    var maxRequestHeaders: Int
    var maxConcurrentStreams: Int
    var perConnectionBufferLimitBytes: Int
    var requestHeadersTimeout: String
    var streamIdleTimeout: String
    var maxShareOfClusterRequests: Int

    init(_ limits: ListenerLimits) {
        maxRequestHeaderBytes = limits.maxRequestHeaderBytes
        maxRequestHeaders = limits.maxRequestHeaders
        maxConcurrentStreams = limits.maxConcurrentStreams
        perConnectionBufferLimitBytes = limits.perConnectionBufferLimitBytes
        requestHeadersTimeout = limits.requestHeadersTimeout.description
        streamIdleTimeout = limits.streamIdleTimeout.description
        maxShareOfClusterRequests = limits.maxShareOfClusterRequests
    }
}

private struct RouteJSON: Encodable {
    var match: MatchJSON
    var cluster: String?
    var split: [WeightedClusterJSON]?
    var timeout: String?
    var requestHeadersToAdd: [String: String]?
    var requestHeadersToRemove: [String]?
    var fault: FaultJSON?
    var retries: RetriesJSON?

    init(_ route: RouteConfig) {
        match = MatchJSON(route.match)
        switch route.action {
        case let .cluster(name):
            cluster = name
        case let .split(entries):
            split = entries.map { WeightedClusterJSON(cluster: $0.cluster, weight: $0.weight) }
        }
        timeout = route.timeout?.description
        requestHeadersToAdd = HeaderEditsJSON.added(route.requestHeadersToAdd)
        if !route.requestHeadersToRemove.isEmpty {
            requestHeadersToRemove = route.requestHeadersToRemove
        }
        fault = route.fault.map(FaultJSON.init)
        retries = route.retries.map(RetriesJSON.init)
    }
}

enum HeaderEditsJSON {
    /// Names are unique and in name order after decoding, so the map, whose
    /// keys are written sorted, loses nothing. Nil when empty.
    static func added(_ headers: [HeaderValue]) -> [String: String]? {
        headers.isEmpty ? nil : Dictionary(headers.map { ($0.name, $0.value) }) { _, last in last }
    }
}

struct RetriesJSON: Encodable {
    struct Backoff: Encodable {
        var base: String
        var max: String
    }

    struct Budget: Encodable {
        var ratio: Double
        var minPerSecond: Int
    }

    var attempts: Int
    var on: [String]
    var retriableStatusCodes: [Int]?
    var perTryTimeout: String?
    var backoff: Backoff
    var budget: Budget
    var bufferLimitBytes: Int

    init(_ policy: RetryPolicy) {
        attempts = policy.attempts
        on = policy.conditions.map(\.rawValue)
        retriableStatusCodes = policy.retriableStatusCodes.isEmpty ? nil : policy.retriableStatusCodes
        perTryTimeout = policy.perTryTimeout?.description
        backoff = Backoff(base: policy.backoff.base.description, max: policy.backoff.max.description)
        budget = Budget(ratio: policy.budget.ratio, minPerSecond: policy.budget.minPerSecond)
        bufferLimitBytes = policy.bufferLimitBytes
    }
}

struct FaultJSON: Encodable {
    struct Delay: Encodable {
        var fixed: String
        var percent: Double
    }

    struct Abort: Encodable {
        var httpStatus: Int?
        var grpcStatus: Int?
        var percent: Double
    }

    var delay: Delay?
    var abort: Abort?

    init(_ fault: FaultConfig) {
        delay = fault.delay.map { Delay(fixed: $0.fixed.description, percent: $0.share.percent) }
        abort = fault.abort.map { abort in
            switch abort.answer {
            case .httpStatus(let status): Abort(httpStatus: status, percent: abort.share.percent)
            case .grpcStatus(let status): Abort(grpcStatus: status, percent: abort.share.percent)
            }
        }
    }
}

private struct WeightedClusterJSON: Encodable {
    var cluster: String
    var weight: Int
}

struct MatchJSON: Encodable {
    var pathPrefix: String?
    var path: String?
    var methods: [String]?
    var headers: [HeaderMatchJSON]?
    var grpc: GRPCMatchJSON?

    init(_ match: RouteMatch) {
        pathPrefix = match.pathPrefix
        path = match.path
        methods = match.methods
        headers = match.headers.isEmpty ? nil : match.headers.map(HeaderMatchJSON.init)
        grpc = match.grpc.map { GRPCMatchJSON(service: $0.service, method: $0.method) }
    }
}

struct HeaderMatchJSON: Encodable {
    var name: String
    var exact: String?
    var prefix: String?
    var present: Bool?

    init(_ match: HeaderMatch) {
        name = match.name
        switch match.condition {
        case let .exact(value): exact = value
        case let .prefix(value): prefix = value
        case let .present(value): present = value
        }
    }
}

struct GRPCMatchJSON: Encodable {
    var service: String
    var method: String?
}

private struct ClusterJSON: Encodable {
    var name: String
    var service: String?
    var `protocol`: String
    var settings: ClusterSettingsJSON
    var tls: ClusterTLSJSON?
    var endpoints: [EndpointJSON]?
    var dns: DNSJSON?

    init(_ cluster: ClusterConfig) {
        name = cluster.name
        service = cluster.service
        `protocol` = cluster.protocolKind.rawValue
        settings = ClusterSettingsJSON(ClusterSettings.Overrides(cluster.settings))
        tls = cluster.tls.map(ClusterTLSJSON.init)
        switch cluster.discovery {
        case let .staticEndpoints(list):
            endpoints = list.map { EndpointJSON(address: $0.address.description, weight: $0.weight) }
        case let .dns(discovery):
            dns = DNSJSON(
                name: discovery.name,
                port: discovery.port,
                refresh: discovery.refresh.description,
                resolver: discovery.resolver?.description,
                family: discovery.family.rawValue
            )
        }
    }

    private enum CodingKeys: String, CodingKey {
        case name, service, `protocol`, tls, endpoints, dns
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(service, forKey: .service)
        try container.encode(`protocol`, forKey: .protocol)
        try container.encodeIfPresent(tls, forKey: .tls)
        try container.encodeIfPresent(endpoints, forKey: .endpoints)
        try container.encodeIfPresent(dns, forKey: .dns)
        // The shared keys sit beside these, as in the YAML.
        try settings.encode(to: encoder)
    }
}

/// The keys a cluster and a ServicePolicy share (`ClusterSettings`), written
/// into the object that holds them; keys with no value are left out.
struct ClusterSettingsJSON: Encodable {
    var loadBalancing: String?
    var hashHeader: String?
    var connectTimeout: String?
    var idleTimeout: String?
    var circuitBreaker: CircuitBreakerJSON?
    var outlierDetection: OutlierDetectionJSON?
    var healthCheck: HealthCheckJSON?
    var panicThreshold: Int?

    init(_ settings: ClusterSettings.Overrides) {
        loadBalancing = settings.loadBalancing?.rawValue
        hashHeader = settings.hashHeader
        connectTimeout = settings.connectTimeout?.description
        idleTimeout = settings.idleTimeout?.description
        circuitBreaker = settings.circuitBreaker.map(CircuitBreakerJSON.init)
        outlierDetection = settings.outlierDetection.map(OutlierDetectionJSON.init)
        healthCheck = settings.healthCheck.map(HealthCheckJSON.init)
        panicThreshold = settings.panicThreshold
    }
}

/// TLS settings show their files' paths, never PEM (see `PEMSource.description`).
private struct ListenerTLSJSON: Encodable {
    var certificate: String
    var privateKey: String
    var clientCertificate: String
    var caCertificates: String?
    var mode: String
    var minimumVersion: String

    init(_ tls: ListenerTLSConfig) {
        minimumVersion = tls.minimumVersion.rawValue
        certificate = tls.certificate.description
        privateKey = tls.privateKey.description
        clientCertificate = tls.clientCertificate.rawValue
        caCertificates = tls.caCertificates?.description
        mode = tls.mode.rawValue
    }
}

private struct ClusterTLSJSON: Encodable {
    var sni: String?
    var caCertificates: String?
    var certificate: String?
    var privateKey: String?
    var identities: [String]?
    var minimumVersion: String

    init(_ tls: ClusterTLSConfig) {
        minimumVersion = tls.minimumVersion.rawValue
        sni = tls.sni
        caCertificates = tls.caCertificates?.description
        certificate = tls.certificate?.description
        privateKey = tls.privateKey?.description
        identities = tls.identities.isEmpty ? nil : tls.identities
    }
}

struct CircuitBreakerJSON: Encodable {
    var maxConnections: Int
    var maxPendingRequests: Int
    var maxRequests: Int
    var maxRetries: Int

    init(_ config: CircuitBreakerConfig) {
        maxConnections = config.maxConnections
        maxPendingRequests = config.maxPendingRequests
        maxRequests = config.maxRequests
        maxRetries = config.maxRetries
    }
}

struct OutlierDetectionJSON: Encodable {
    struct SuccessRate: Encodable {
        var minimumHosts: Int
        var requestVolume: Int
        var stdevFactor: Double
    }

    var consecutiveErrors: Int
    var interval: String
    var baseEjectionTime: String
    var maxEjectionTime: String
    var maxEjectionPercent: Int
    var successRate: SuccessRate?

    init(_ config: OutlierDetectionConfig) {
        consecutiveErrors = config.consecutiveErrors
        interval = config.interval.description
        baseEjectionTime = config.baseEjectionTime.description
        maxEjectionTime = config.maxEjectionTime.description
        maxEjectionPercent = config.maxEjectionPercent
        successRate = config.successRate.map {
            SuccessRate(minimumHosts: $0.minimumHosts, requestVolume: $0.requestVolume, stdevFactor: $0.stdevFactor)
        }
    }
}

struct HealthCheckJSON: Encodable {
    struct GRPC: Encodable {
        var service: String
    }

    struct HTTP: Encodable {
        var path: String
        var expectedStatuses: [Int]
    }

    struct TCP: Encodable {}

    var grpc: GRPC?
    var http: HTTP?
    var tcp: TCP?
    var interval: String
    var timeout: String
    var unhealthyThreshold: Int
    var healthyThreshold: Int

    init(_ config: HealthCheckConfig) {
        switch config.probe {
        case .grpc(let service): grpc = GRPC(service: service)
        case .http(let path, let statuses): http = HTTP(path: path, expectedStatuses: statuses)
        case .tcp: tcp = TCP()
        }
        interval = config.interval.description
        timeout = config.timeout.description
        unhealthyThreshold = config.unhealthyThreshold
        healthyThreshold = config.healthyThreshold
    }
}

private struct EndpointJSON: Encodable {
    var address: String
    var weight: Int
}

private struct DNSJSON: Encodable {
    var name: String
    var port: Int
    var refresh: String
    var resolver: String?
    var family: String
}
