import Testing
@testable import MeshConfig

@Suite("Route retries")
struct RetryPolicyConfigTests {
    private func decodedRetries(_ retries: String) throws -> RetryPolicy? {
        let config = try ConfigLoader.decode(yaml: Fixture.route("cluster: user, retries: \(retries)"))
        return config.listeners[0].routes[0].retries
    }

    @Test func theContractsExampleDecodes() throws {
        let policy = try decodedRetries("""
            { attempts: 2, on: [connect-failure, reset, refused-stream, gateway-error, unavailable], perTryTimeout: 500ms,
              backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }
            """)
        #expect(policy == RetryPolicy(
            attempts: 2, conditions: [.connectFailure, .reset, .refusedStream, .gatewayError, .unavailable],
            perTryTimeout: .milliseconds(500), backoff: RetryBackoff(base: .milliseconds(25), max: .milliseconds(250)),
            budget: RetryBudgetConfig(ratio: 0.2, minPerSecond: 10)))
    }

    @Test func onlyOnIsRequired() throws {
        let policy = try decodedRetries("{ on: [5xx] }")
        #expect(policy == RetryPolicy(conditions: [.serverError]))
        #expect(policy?.attempts == 1)
        #expect(policy?.bufferLimitBytes == 64 * 1024)
        #expect(policy?.budget == RetryBudgetConfig(ratio: 0.2, minPerSecond: 10))
        #expect(policy?.backoff == RetryBackoff(base: .milliseconds(25), max: .milliseconds(250)))
    }

    @Test func statusCodesComeWithTheirCondition() throws {
        let policy = try decodedRetries("{ on: [retriable-status-codes], retriableStatusCodes: [409, 429] }")
        #expect(policy?.retriableStatusCodes == [409, 429])
    }

    @Test(arguments: [
        ("{ attempts: 2 }", "listeners[0].routes[0].retries.on", "on: [connect-failure"),
        ("{ on: [] }", "listeners[0].routes[0].retries.on", "at least one condition"),
        ("{ on: [connect_failure] }", "listeners[0].routes[0].retries.on[0]", "did you mean \"connect-failure\""),
        ("{ on: [5xx], attempts: 0 }", "listeners[0].routes[0].retries.attempts", "from 1 to 10"),
        ("{ on: [5xx], attempts: 11 }", "listeners[0].routes[0].retries.attempts", "from 1 to 10"),
        ("{ on: [retriable-status-codes] }", "listeners[0].routes[0].retries.retriableStatusCodes", "retriableStatusCodes: [409]"),
        ("{ on: [5xx], retriableStatusCodes: [409] }", "listeners[0].routes[0].retries.retriableStatusCodes", "add it there"),
        ("{ on: [retriable-status-codes], retriableStatusCodes: [99] }", "listeners[0].routes[0].retries.retriableStatusCodes[0]", "100-599"),
        ("{ on: [5xx], perTryTimeout: 0s }", "listeners[0].routes[0].retries.perTryTimeout", "above zero"),
        ("{ on: [5xx], backoff: { base: 1s, max: 100ms } }", "listeners[0].routes[0].retries.backoff.max", "at least 1s"),
        ("{ on: [5xx], budget: { ratio: -1 } }", "listeners[0].routes[0].retries.budget.ratio", "from 0 to 10"),
        ("{ on: [5xx], budget: { minPerSecond: 1.5 } }", "listeners[0].routes[0].retries.budget.minPerSecond", "0 or more"),
        ("{ on: [5xx], bufferLimitBytes: 0 }", "listeners[0].routes[0].retries.bufferLimitBytes", "positive integer"),
        ("{ on: [5xx], attempt: 2 }", "listeners[0].routes[0].retries.attempt", "did you mean \"attempts\""),
    ])
    func mistakesNameTheField(_ retries: String, _ path: String, _ fragment: String) {
        let issue = onlyIssue(Fixture.route("cluster: user, retries: \(retries)"))
        #expect(issue?.path == path)
        #expect(issue?.message.contains(fragment) == true, "\(issue?.message ?? "no single issue")")
    }
}
