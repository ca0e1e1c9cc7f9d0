extension ProxyConfigDecoder {
    /// `outlierDetection: { consecutiveErrors, interval, baseEjectionTime, maxEjectionTime, maxEjectionPercent, successRate }`;
    /// every key is optional (`outlierDetection: {}` turns it on with the defaults).
    mutating func outlierDetection(_ node: ConfigNode) -> OutlierDetectionConfig? {
        guard let fields = reader.mapping(
            node,
            keys: ["consecutiveErrors", "interval", "baseEjectionTime", "maxEjectionTime", "maxEjectionPercent", "successRate"]
        ) else { return nil }
        typealias Defaults = OutlierDetectionConfig
        let consecutiveErrors = fields["consecutiveErrors"].map { reader.positiveInt($0, maximum: 1000) }
            ?? Defaults.defaultConsecutiveErrors
        let interval = fields["interval"].map { reader.positiveDuration($0) } ?? Defaults.defaultInterval
        let baseEjectionTime = fields["baseEjectionTime"].map { reader.positiveDuration($0) } ?? Defaults.defaultBaseEjectionTime
        let maxEjectionTime = fields["maxEjectionTime"].map { reader.positiveDuration($0) }
            ?? Swift.max(Defaults.defaultMaxEjectionTime, baseEjectionTime ?? Defaults.defaultBaseEjectionTime)
        let maxEjectionPercent = fields["maxEjectionPercent"].map {
            reader.integer($0, in: 0...100, expected: "a percentage from 0 to 100")
        } ?? Defaults.defaultMaxEjectionPercent
        let successRate = fields["successRate"].flatMap { self.successRate($0) }

        // Checked whatever else is wrong in the block, so every problem shows at once.
        if let baseEjectionTime, let maxEjectionTime, maxEjectionTime < baseEjectionTime {
            reader.report(fields.path.key("maxEjectionTime"), "\(maxEjectionTime) is below baseEjectionTime \(baseEjectionTime); set it to at least \(baseEjectionTime)")
            return nil
        }
        guard let consecutiveErrors, let interval, let baseEjectionTime, let maxEjectionTime, let maxEjectionPercent,
              successRate != nil || !fields.has("successRate") else { return nil }
        return OutlierDetectionConfig(
            consecutiveErrors: consecutiveErrors, interval: interval, baseEjectionTime: baseEjectionTime,
            maxEjectionTime: maxEjectionTime, maxEjectionPercent: maxEjectionPercent, successRate: successRate)
    }

    /// `successRate: { minimumHosts, requestVolume, stdevFactor }`, each optional.
    private mutating func successRate(_ node: ConfigNode) -> SuccessRateConfig? {
        guard let fields = reader.mapping(node, keys: ["minimumHosts", "requestVolume", "stdevFactor"]) else { return nil }
        let minimumHosts = fields["minimumHosts"].map { reader.positiveInt($0) } ?? SuccessRateConfig.defaultMinimumHosts
        let requestVolume = fields["requestVolume"].map { reader.positiveInt($0) } ?? SuccessRateConfig.defaultRequestVolume
        let stdevFactor = fields["stdevFactor"].map {
            reader.number($0, in: 0...100, expected: "a number of standard deviations such as 1.9")
        } ?? SuccessRateConfig.defaultStdevFactor
        guard let minimumHosts, let requestVolume, let stdevFactor else { return nil }
        return SuccessRateConfig(minimumHosts: minimumHosts, requestVolume: requestVolume, stdevFactor: stdevFactor)
    }
}
