/// Active health checking: the proxy probes every endpoint of the cluster
/// on its own schedule, and endpoints that fail their probes get no
/// requests until they pass again.
public struct HealthCheckConfig: Sendable, Equatable {
    public enum Probe: Sendable, Equatable {
        /// `grpc.health.v1.Health/Check` for `service` ("" asks about the
        /// server as a whole); passes when the answer is SERVING.
        case grpc(service: String)
        /// A GET of `path`; passes when the status is one of `expectedStatuses`.
        case http(path: String, expectedStatuses: [Int])
        /// Passes when a TCP connection opens.
        case tcp
    }

    public var probe: Probe
    /// Time between the end of one probe of an endpoint and the start of the next.
    public var interval: MeshDuration
    /// A probe without its answer within this fails.
    public var timeout: MeshDuration
    /// Failed probes in a row that mark a healthy endpoint unhealthy.
    public var unhealthyThreshold: Int
    /// Passed probes in a row that mark an unhealthy endpoint healthy (a new
    /// endpoint needs one).
    public var healthyThreshold: Int

    /// The defaults of a Kubernetes probe, which most users already tuned against.
    public static let defaultInterval = MeshDuration.seconds(10)
    public static let defaultTimeout = MeshDuration.seconds(1)
    public static let defaultUnhealthyThreshold = 3
    public static let defaultHealthyThreshold = 1
    public static let defaultExpectedStatuses = [200]

    public init(
        probe: Probe,
        interval: MeshDuration = HealthCheckConfig.defaultInterval,
        timeout: MeshDuration = HealthCheckConfig.defaultTimeout,
        unhealthyThreshold: Int = HealthCheckConfig.defaultUnhealthyThreshold,
        healthyThreshold: Int = HealthCheckConfig.defaultHealthyThreshold
    ) {
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.unhealthyThreshold = unhealthyThreshold
        self.healthyThreshold = healthyThreshold
    }
}
