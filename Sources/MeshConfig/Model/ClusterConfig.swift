/// A named set of endpoints, the protocol to speak to them and how to pick one per request.
public struct ClusterConfig: Sendable, Equatable {
    public var name: String
    /// The service the endpoints are instances of; nil: the cluster's name.
    /// Subsets and versions of one service are clusters of their own, which
    /// this puts back together in the `destination_service` metric label.
    public var service: String?
    /// The protocol spoken to the endpoints. Default http1.
    public var protocolKind: UpstreamProtocol
    /// Where the endpoints come from.
    public var discovery: EndpointDiscovery
    /// How endpoints are chosen and reached: balancing, timeouts, circuit
    /// breaker, outlier detection, health checks (the keys a ServicePolicy shares).
    public var settings: ClusterSettings
    /// TLS to the endpoints; nil: plaintext.
    public var tls: ClusterTLSConfig?

    /// The `destination_service` metric label.
    public var destinationService: String { service ?? name }

    public init(
        name: String,
        service: String? = nil,
        protocolKind: UpstreamProtocol = .http1,
        discovery: EndpointDiscovery,
        settings: ClusterSettings = .proxyDefaults,
        tls: ClusterTLSConfig? = nil
    ) {
        self.name = name
        self.service = service
        self.protocolKind = protocolKind
        self.discovery = discovery
        self.settings = settings
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
