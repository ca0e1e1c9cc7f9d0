/// A named set of endpoints, the protocol to speak to them and how to pick one per request.
public struct ClusterConfig: Sendable, Equatable {
    public var name: String
    /// The service the endpoints are instances of; nil: the cluster's name.
    /// Subsets and versions of one service are clusters of their own, which
    /// this puts back together in the `destination_service` metric label.
    public var service: String?
    /// The protocol spoken to the endpoints. Default http1.
    public var protocolKind: UpstreamProtocol
    /// The balancing policy. Default round_robin.
    public var loadBalancing: LoadBalancingPolicy
    /// ring_hash only: the request header whose value is hashed.
    public var hashHeader: String?
    /// Where the endpoints come from.
    public var discovery: EndpointDiscovery
    /// How long establishing a connection to an endpoint may take. Default 1s.
    public var connectTimeout: MeshDuration
    /// A connection to an endpoint that serves no request for this long is closed. Default 1h.
    public var idleTimeout: MeshDuration
    /// Limits on connections and requests to the cluster, across all event loops.
    public var circuitBreaker: CircuitBreakerConfig
    /// Ejects endpoints that fail their requests; nil: off.
    public var outlierDetection: OutlierDetectionConfig?
    /// Probes every endpoint; nil: off.
    public var healthCheck: HealthCheckConfig?
    /// Percent of endpoints that must be usable (healthy, not ejected) for balancing
    /// to skip the others; below it, every endpoint gets requests again, so
    /// that a cluster-wide failure does not pile all load on the few left.
    public var panicThreshold: Int
    /// TLS to the endpoints; nil: plaintext.
    public var tls: ClusterTLSConfig?

    /// The `destination_service` metric label.
    public var destinationService: String { service ?? name }

    public static let defaultPanicThreshold = 50
    public static let defaultConnectTimeout = MeshDuration.seconds(1)
    public static let defaultIdleTimeout = MeshDuration.seconds(3600)

    public init(
        name: String,
        service: String? = nil,
        protocolKind: UpstreamProtocol = .http1,
        loadBalancing: LoadBalancingPolicy = .roundRobin,
        hashHeader: String? = nil,
        discovery: EndpointDiscovery,
        connectTimeout: MeshDuration = ClusterConfig.defaultConnectTimeout,
        idleTimeout: MeshDuration = ClusterConfig.defaultIdleTimeout,
        circuitBreaker: CircuitBreakerConfig = CircuitBreakerConfig(),
        outlierDetection: OutlierDetectionConfig? = nil,
        healthCheck: HealthCheckConfig? = nil,
        panicThreshold: Int = ClusterConfig.defaultPanicThreshold,
        tls: ClusterTLSConfig? = nil
    ) {
        self.name = name
        self.service = service
        self.protocolKind = protocolKind
        self.loadBalancing = loadBalancing
        self.hashHeader = hashHeader
        self.discovery = discovery
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.circuitBreaker = circuitBreaker
        self.outlierDetection = outlierDetection
        self.healthCheck = healthCheck
        self.panicThreshold = panicThreshold
        self.tls = tls
    }
}

/// Config spelling: `http1`, `http2`.
public enum UpstreamProtocol: String, Sendable, Equatable, CaseIterable {
    case http1
    case http2
}

/// Config spelling: `round_robin`, `least_request`, `random`, `ring_hash`.
public enum LoadBalancingPolicy: String, Sendable, Equatable, CaseIterable {
    case roundRobin = "round_robin"
    case leastRequest = "least_request"
    case random = "random"
    case ringHash = "ring_hash"
}

public enum EndpointDiscovery: Sendable, Equatable {
    /// A fixed list (`endpoints:`).
    case staticEndpoints([StaticEndpoint])
    /// The A/AAAA records of a name (`dns:`).
    case dns(DNSDiscovery)
}

public struct StaticEndpoint: Sendable, Equatable {
    /// An IP literal and a port.
    public var address: HostPort
    /// Relative share of requests; positive. Default 1.
    public var weight: Int

    public init(address: HostPort, weight: Int = 1) {
        self.address = address
        self.weight = weight
    }
}

public struct DNSDiscovery: Sendable, Equatable {
    /// The name whose A and AAAA records are the endpoints (a headless service answers one per pod).
    public var name: String
    /// The port every resolved address is reached on.
    public var port: Int
    /// How often the name is resolved again. Default 5s.
    public var refresh: MeshDuration
    /// The DNS server asked. Nil: the first nameserver of /etc/resolv.conf.
    public var resolver: HostPort?
    /// Which address records are asked for. Default auto.
    public var family: Family

    /// `auto`: A and AAAA, using whichever answered (a resolver that refuses
    /// or fails one family, as many do for AAAA, still yields endpoints);
    /// `v4`: A only; `v6`: AAAA only.
    public enum Family: String, Sendable, Equatable, CaseIterable {
        case auto
        case v4
        case v6
    }

    public static let defaultRefresh = MeshDuration.seconds(5)

    public init(
        name: String, port: Int, refresh: MeshDuration = DNSDiscovery.defaultRefresh, resolver: HostPort? = nil,
        family: Family = .auto
    ) {
        self.name = name
        self.port = port
        self.refresh = refresh
        self.resolver = resolver
        self.family = family
    }
}
