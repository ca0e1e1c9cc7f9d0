extension ProxyConfigDecoder {
    /// `circuitBreaker: { maxConnections, maxPendingRequests, maxRequests, maxRetries }`;
    /// every key is optional and defaults to 1024.
    mutating func circuitBreaker(_ node: ConfigNode) -> CircuitBreakerConfig? {
        guard let fields = reader.mapping(node, keys: ["maxConnections", "maxPendingRequests", "maxRequests", "maxRetries"]) else {
            return nil
        }
        var config = CircuitBreakerConfig()
        var valid = true
        for (key, limit) in [
            ("maxConnections", \CircuitBreakerConfig.maxConnections),
            ("maxPendingRequests", \CircuitBreakerConfig.maxPendingRequests),
            ("maxRequests", \CircuitBreakerConfig.maxRequests),
            ("maxRetries", \CircuitBreakerConfig.maxRetries),
        ] {
            guard let value = fields[key] else { continue }
            if let parsed = reader.positiveInt(value) {
                config[keyPath: limit] = parsed
            } else {
                valid = false
            }
        }
        return valid ? config : nil
    }
}
