extension ProxyConfigDecoder {
    /// `retries: { attempts, on, retriableStatusCodes, perTryTimeout, backoff, budget, bufferLimitBytes }`;
    /// only `on` is required.
    mutating func retryPolicy(_ node: ConfigNode) -> RetryPolicy? {
        guard let fields = reader.mapping(
            node,
            keys: ["attempts", "on", "retriableStatusCodes", "perTryTimeout", "backoff", "budget", "bufferLimitBytes"]
        ) else { return nil }
        let attempts = fields["attempts"].flatMap {
            reader.integer($0, in: 1...RetryPolicyDecoding.maxAttempts, expected: "a number of retries from 1 to \(RetryPolicyDecoding.maxAttempts)")
        }
        let conditions = reader.required(
            "on", in: fields, hint: "say which failures are retried, e.g. \"on: [connect-failure, refused-stream, unavailable]\""
        ).flatMap { retryConditions($0) }
        let statusCodes = fields["retriableStatusCodes"].flatMap { retriableStatusCodes($0) }
        let perTryTimeout = fields["perTryTimeout"].flatMap { reader.positiveDuration($0) }
        let backoff = fields["backoff"].flatMap { retryBackoff($0) }
        let budget = fields["budget"].flatMap { retryBudget($0) }
        let bufferLimit = fields["bufferLimitBytes"].flatMap { reader.positiveInt($0, maximum: RetryPolicyDecoding.maxBufferLimitBytes) }

        if let conditions {
            let wantsCodes = conditions.contains(.retriableStatusCodes)
            if wantsCodes && !fields.has("retriableStatusCodes") {
                reader.report(fields.path.key("retriableStatusCodes"), "missing; \"on\" has retriable-status-codes, so list the statuses to retry, e.g. \"retriableStatusCodes: [409]\"")
                return nil
            }
            if !wantsCodes && fields.has("retriableStatusCodes") {
                reader.report(fields.path.key("retriableStatusCodes"), "only used when \"on\" has retriable-status-codes; add it there or remove this key")
                return nil
            }
        }
        // A key that was given but did not decode has been reported already.
        let decoded = ["attempts": attempts != nil, "retriableStatusCodes": statusCodes != nil,
                       "perTryTimeout": perTryTimeout != nil, "backoff": backoff != nil,
                       "budget": budget != nil, "bufferLimitBytes": bufferLimit != nil]
        guard let conditions, decoded.allSatisfy({ key, ok in ok || !fields.has(key) }) else { return nil }
        return RetryPolicy(
            attempts: attempts ?? RetryPolicy.defaultAttempts,
            conditions: conditions,
            retriableStatusCodes: statusCodes ?? [],
            perTryTimeout: perTryTimeout,
            backoff: backoff ?? RetryBackoff(),
            budget: budget ?? RetryBudgetConfig(),
            bufferLimitBytes: bufferLimit ?? RetryPolicy.defaultBufferLimitBytes
        )
    }

    private mutating func retryConditions(_ node: ConfigNode) -> [RetryPolicy.Condition]? {
        guard let entries = reader.list(node, of: "retry conditions", atLeastOne: "condition such as connect-failure") else {
            return nil
        }
        let conditions = entries.compactMap { reader.choice($0, of: RetryPolicy.Condition.self) }
        return conditions.count == entries.count ? conditions : nil
    }

    private mutating func retriableStatusCodes(_ node: ConfigNode) -> [Int]? {
        guard let entries = reader.list(node, of: "HTTP statuses", atLeastOne: "status such as 409") else { return nil }
        let codes = entries.compactMap { reader.integer($0, in: 100...599, expected: "an HTTP status 100-599") }
        return codes.count == entries.count ? codes : nil
    }

    /// `backoff: { base, max }`, each optional.
    private mutating func retryBackoff(_ node: ConfigNode) -> RetryBackoff? {
        guard let fields = reader.mapping(node, keys: ["base", "max"]) else { return nil }
        let base = fields["base"].map { reader.positiveDuration($0) } ?? RetryBackoff.defaultBase
        let max = fields["max"].map { reader.positiveDuration($0) } ?? RetryBackoff.defaultMax
        guard let base, let max else { return nil }
        guard max >= base else {
            reader.report(fields.path.key("max"), "\(max) is below base \(base); the backoff grows from base up to max, so set max to at least \(base)")
            return nil
        }
        return RetryBackoff(base: base, max: max)
    }

    /// `budget: { ratio, minPerSecond }`, each optional.
    private mutating func retryBudget(_ node: ConfigNode) -> RetryBudgetConfig? {
        guard let fields = reader.mapping(node, keys: ["ratio", "minPerSecond"]) else { return nil }
        let ratio = fields["ratio"].map {
            reader.number($0, in: 0...RetryPolicyDecoding.maxBudgetRatio, expected: "a ratio of retries to requests from 0 to \(Int(RetryPolicyDecoding.maxBudgetRatio)), e.g. 0.2")
        } ?? RetryBudgetConfig.defaultRatio
        let minPerSecond = fields["minPerSecond"].map {
            reader.integer($0, in: 0...1_000_000, expected: "a number of retries per second, 0 or more")
        } ?? RetryBudgetConfig.defaultMinPerSecond
        guard let ratio, let minPerSecond else { return nil }
        return RetryBudgetConfig(ratio: ratio, minPerSecond: minPerSecond)
    }
}

enum RetryPolicyDecoding {
    /// More retries than this would outlast any sensible route timeout.
    static let maxAttempts = 10
    /// Every retried request's body waits in memory until its response comes.
    static let maxBufferLimitBytes = 16 * 1024 * 1024
    static let maxBudgetRatio = 10.0
}
