/// How a cluster's endpoints are chosen and reached: the keys a proxy's
/// cluster and a mesh's ServicePolicy share. One value, so that a key
/// added for one is added for both, decoded by one reader
/// (`ProxyConfigDecoder.clusterSettings`) and compared whole when a reload
/// decides whether a cluster keeps its connections.
public struct ClusterSettings: Sendable, Equatable {
    /// The balancing policy.
    public var loadBalancing: LoadBalancingPolicy
    /// ring_hash only: the request header whose value is hashed.
    public var hashHeader: String?
    /// How long establishing a connection to an endpoint may take.
    public var connectTimeout: MeshDuration
    /// A connection to an endpoint that serves no request for this long is closed.
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

    public static let defaultConnectTimeout = MeshDuration.seconds(1)
    public static let defaultIdleTimeout = MeshDuration.seconds(3600)
    public static let defaultPanicThreshold = 50

    public init(
        loadBalancing: LoadBalancingPolicy = .roundRobin, hashHeader: String? = nil,
        connectTimeout: MeshDuration = ClusterSettings.defaultConnectTimeout,
        idleTimeout: MeshDuration = ClusterSettings.defaultIdleTimeout,
        circuitBreaker: CircuitBreakerConfig = CircuitBreakerConfig(),
        outlierDetection: OutlierDetectionConfig? = nil, healthCheck: HealthCheckConfig? = nil,
        panicThreshold: Int = ClusterSettings.defaultPanicThreshold
    ) {
        self.loadBalancing = loadBalancing
        self.hashHeader = hashHeader
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.circuitBreaker = circuitBreaker
        self.outlierDetection = outlierDetection
        self.healthCheck = healthCheck
        self.panicThreshold = panicThreshold
    }

    /// A proxy's cluster that sets none of the keys: round_robin, no outlier
    /// detection and no health checks.
    public static let proxyDefaults = ClusterSettings()

    /// A sidecar's cluster for a service whose ServicePolicy sets none of
    /// them: least_request (instances differ in load, as Linkerd and Istio
    /// assume) and outlier detection on, so one failing instance is taken out.
    public static let meshDefaults = ClusterSettings(
        loadBalancing: .leastRequest,
        outlierDetection: OutlierDetectionConfig(
            consecutiveErrors: 5, interval: .seconds(1), baseEjectionTime: .seconds(30), maxEjectionPercent: 50))

    /// The same keys, each optional: what a ServicePolicy sets. What it
    /// leaves out keeps the mesh's defaults (`resolved(over:)`).
    public struct Overrides: Sendable, Equatable {
        public var loadBalancing: LoadBalancingPolicy?
        public var hashHeader: String?
        public var connectTimeout: MeshDuration?
        public var idleTimeout: MeshDuration?
        public var circuitBreaker: CircuitBreakerConfig?
        public var outlierDetection: OutlierDetectionConfig?
        public var healthCheck: HealthCheckConfig?
        public var panicThreshold: Int?

        public init(
            loadBalancing: LoadBalancingPolicy? = nil, hashHeader: String? = nil, connectTimeout: MeshDuration? = nil,
            idleTimeout: MeshDuration? = nil, circuitBreaker: CircuitBreakerConfig? = nil,
            outlierDetection: OutlierDetectionConfig? = nil, healthCheck: HealthCheckConfig? = nil,
            panicThreshold: Int? = nil
        ) {
            self.loadBalancing = loadBalancing
            self.hashHeader = hashHeader
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.circuitBreaker = circuitBreaker
            self.outlierDetection = outlierDetection
            self.healthCheck = healthCheck
            self.panicThreshold = panicThreshold
        }

        /// Every key of a full value set (a cluster's effective settings, as
        /// its JSON shows them).
        public init(_ settings: ClusterSettings) {
            self.init(
                loadBalancing: settings.loadBalancing, hashHeader: settings.hashHeader,
                connectTimeout: settings.connectTimeout, idleTimeout: settings.idleTimeout,
                circuitBreaker: settings.circuitBreaker, outlierDetection: settings.outlierDetection,
                healthCheck: settings.healthCheck, panicThreshold: settings.panicThreshold)
        }

        /// `defaults` with every key set here in its place.
        public func resolved(over defaults: ClusterSettings) -> ClusterSettings {
            ClusterSettings(
                loadBalancing: loadBalancing ?? defaults.loadBalancing, hashHeader: hashHeader ?? defaults.hashHeader,
                connectTimeout: connectTimeout ?? defaults.connectTimeout, idleTimeout: idleTimeout ?? defaults.idleTimeout,
                circuitBreaker: circuitBreaker ?? defaults.circuitBreaker,
                outlierDetection: outlierDetection ?? defaults.outlierDetection,
                healthCheck: healthCheck ?? defaults.healthCheck, panicThreshold: panicThreshold ?? defaults.panicThreshold)
        }
    }
}
