import Testing
@testable import MeshConfig

@Suite("Circuit breakers")
struct CircuitBreakerConfigTests {
    @Test func defaultToEnvoysLimits() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document())
        #expect(config.clusters[0].settings.circuitBreaker == CircuitBreakerConfig(
            maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 1024))
    }

    @Test func theContractsExampleDecodes() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster(
            "name: user, endpoints: [127.0.0.1:1], "
                + "circuitBreaker: { maxConnections: 1024, maxPendingRequests: 128, maxRequests: 1024, maxRetries: 3 }"))
        #expect(config.clusters[0].settings.circuitBreaker == CircuitBreakerConfig(
            maxConnections: 1024, maxPendingRequests: 128, maxRequests: 1024, maxRetries: 3))
    }

    @Test func maxRetriesIsALimitLikeTheOthers() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster(
            "name: user, circuitBreaker: { maxRetries: 7 }, endpoints: [127.0.0.1:1]"))
        #expect(config.clusters[0].settings.circuitBreaker.maxRetries == 7)
        #expect(onlyIssue(Fixture.cluster(
            "name: user, circuitBreaker: { maxRetries: -1 }, endpoints: [127.0.0.1:1]"))?.path
            == "clusters[0].circuitBreaker.maxRetries")
    }

    @Test func keysLeftOutKeepTheirDefault() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster(
            "name: user, circuitBreaker: { maxRequests: 10, maxPendingRequests: 2 }, endpoints: [127.0.0.1:1]"))
        #expect(config.clusters[0].settings.circuitBreaker == CircuitBreakerConfig(
            maxConnections: 1024, maxPendingRequests: 2, maxRequests: 10))
    }

    @Test func nonPositiveLimitsAreRefusedWithTheirPath() {
        let issue = onlyIssue(Fixture.cluster(
            "name: user, circuitBreaker: { maxConnections: 0 }, endpoints: [127.0.0.1:1]"))
        #expect(issue?.path == "clusters[0].circuitBreaker.maxConnections")
        #expect(issue?.message.contains("positive integer") == true)
    }

    @Test func unknownKeysAreRefused() {
        let issue = onlyIssue(Fixture.cluster(
            "name: user, circuitBreaker: { maxRequest: 5 }, endpoints: [127.0.0.1:1]"))
        #expect(issue?.path == "clusters[0].circuitBreaker.maxRequest")
    }
}
