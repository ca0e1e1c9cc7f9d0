extension ProxyConfigDecoder {
    /// The keys a cluster and a ServicePolicy share (`ClusterSettings`).
    static let clusterSettingsKeys = [
        "loadBalancing", "hashHeader", "connectTimeout", "idleTimeout", "circuitBreaker", "outlierDetection",
        "healthCheck", "panicThreshold",
    ]

    /// The shared keys of a cluster's or a policy's mapping, each nil when
    /// left out; nil when one is given but invalid (its issue is recorded).
    /// `defaults` say what a key left out means, so that the hashHeader rule
    /// judges the policy in effect; `probeProtocol` is what health checks
    /// speak (nil: the cluster's protocol is itself invalid).
    mutating func clusterSettings(
        _ fields: ConfigMapping, defaults: ClusterSettings, probeProtocol: UpstreamProtocol?
    ) -> ClusterSettings.Overrides? {
        let loadBalancing = fields["loadBalancing"].flatMap { reader.choice($0, of: LoadBalancingPolicy.self) }
        let hashHeader = fields["hashHeader"].flatMap { reader.headerName($0) }
        // Skipped when the policy is invalid: it would be judged against a policy the user did not write.
        if !fields.has("loadBalancing") || loadBalancing != nil {
            checkHashHeader(fields, policy: loadBalancing ?? defaults.loadBalancing)
        }
        let connectTimeout = fields["connectTimeout"].flatMap { reader.positiveDuration($0) }
        let idleTimeout = fields["idleTimeout"].flatMap { reader.positiveDuration($0) }
        let circuitBreaker = fields["circuitBreaker"].flatMap { self.circuitBreaker($0) }
        let outlierDetection = fields["outlierDetection"].flatMap { self.outlierDetection($0) }
        let healthCheck = fields["healthCheck"].flatMap { self.healthCheck($0, protocolKind: probeProtocol) }
        let panicThreshold = fields["panicThreshold"].flatMap {
            reader.integer($0, in: 0...100, expected: "a percentage from 0 to 100")
        }
        let settings = ClusterSettings.Overrides(
            loadBalancing: loadBalancing, hashHeader: hashHeader, connectTimeout: connectTimeout,
            idleTimeout: idleTimeout, circuitBreaker: circuitBreaker, outlierDetection: outlierDetection,
            healthCheck: healthCheck, panicThreshold: panicThreshold)
        let read: [String: Bool] = [
            "loadBalancing": loadBalancing != nil, "hashHeader": hashHeader != nil,
            "connectTimeout": connectTimeout != nil, "idleTimeout": idleTimeout != nil,
            "circuitBreaker": circuitBreaker != nil, "outlierDetection": outlierDetection != nil,
            "healthCheck": healthCheck != nil, "panicThreshold": panicThreshold != nil,
        ]
        return read.allSatisfy { key, wasRead in wasRead || !fields.has(key) } ? settings : nil
    }

    /// ring_hash needs a header to hash; every other policy would ignore one,
    /// which more likely means the policy is not what the author intended.
    private mutating func checkHashHeader(_ fields: ConfigMapping, policy: LoadBalancingPolicy) {
        let path = fields.path.key("hashHeader")
        if policy == .ringHash, !fields.has("hashHeader") {
            reader.report(path, "missing; loadBalancing: ring_hash picks the endpoint by hashing a request header, so name one, e.g. \"hashHeader: x-user-id\"")
        } else if policy != .ringHash, fields.has("hashHeader") {
            reader.report(path, "only used with loadBalancing: ring_hash, but this cluster uses \(policy.rawValue); remove hashHeader or set loadBalancing: ring_hash")
        }
    }
}
