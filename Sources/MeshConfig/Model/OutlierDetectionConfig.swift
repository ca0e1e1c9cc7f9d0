/// Passive health checking: endpoints that fail the requests sent to them
/// are ejected from balancing for a while, and come back by themselves.
public struct OutlierDetectionConfig: Sendable, Equatable {
    /// Failures in a row (5xx, gRPC statuses that mean the server is sick,
    /// resets, connect failures, timeouts) that eject an endpoint at once.
    public var consecutiveErrors: Int
    /// How often ejections end, ejection times decay and success rates are judged.
    public var interval: MeshDuration
    /// An endpoint is ejected for this times the number of its ejections so
    /// far, which decreases again for every interval it spends back in service.
    public var baseEjectionTime: MeshDuration
    /// The cap on one ejection's length (at least `baseEjectionTime`).
    public var maxEjectionTime: MeshDuration
    /// The share of the cluster's endpoints that may be ejected at once
    /// (at least one endpoint may always be).
    public var maxEjectionPercent: Int
    /// Optional: ejects endpoints whose success rate is far below the others'.
    public var successRate: SuccessRateConfig?

    public static let defaultConsecutiveErrors = 5
    public static let defaultInterval = MeshDuration.seconds(10)
    public static let defaultBaseEjectionTime = MeshDuration.seconds(30)
    public static let defaultMaxEjectionTime = MeshDuration.seconds(300)
    public static let defaultMaxEjectionPercent = 10

    public init(
        consecutiveErrors: Int = OutlierDetectionConfig.defaultConsecutiveErrors,
        interval: MeshDuration = OutlierDetectionConfig.defaultInterval,
        baseEjectionTime: MeshDuration = OutlierDetectionConfig.defaultBaseEjectionTime,
        maxEjectionTime: MeshDuration = OutlierDetectionConfig.defaultMaxEjectionTime,
        maxEjectionPercent: Int = OutlierDetectionConfig.defaultMaxEjectionPercent,
        successRate: SuccessRateConfig? = nil
    ) {
        self.consecutiveErrors = consecutiveErrors
        self.interval = interval
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionTime = maxEjectionTime
        self.maxEjectionPercent = maxEjectionPercent
        self.successRate = successRate
    }
}

/// Every interval, among endpoints that served at least `requestVolume`
/// requests, those whose success rate is below the mean by more than
/// `stdevFactor` standard deviations are ejected, when at least
/// `minimumHosts` endpoints qualify (Envoy's success-rate detection).
public struct SuccessRateConfig: Sendable, Equatable {
    public var minimumHosts: Int
    public var requestVolume: Int
    public var stdevFactor: Double

    public static let defaultMinimumHosts = 5
    public static let defaultRequestVolume = 100
    public static let defaultStdevFactor = 1.9

    public init(
        minimumHosts: Int = SuccessRateConfig.defaultMinimumHosts,
        requestVolume: Int = SuccessRateConfig.defaultRequestVolume,
        stdevFactor: Double = SuccessRateConfig.defaultStdevFactor
    ) {
        self.minimumHosts = minimumHosts
        self.requestVolume = requestVolume
        self.stdevFactor = stdevFactor
    }
}
