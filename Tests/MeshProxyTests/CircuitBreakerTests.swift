import MeshConfig
import Testing

@testable import MeshProxy

@Suite struct CircuitBreakerTests {
    private let breaker = CircuitBreaker(
        limits: CircuitBreakerConfig(maxConnections: 1, maxPendingRequests: 2, maxRequests: 3, maxRetries: 1))

    @Test func requestsPastTheLimitAreRefusedAndCounted() {
        #expect((0..<3).map { _ in breaker.tryStartRequest() } == [1, 2, 3], "each answers the requests in flight")
        #expect(breaker.tryStartRequest() == nil)
        breaker.requestFinished()
        #expect(breaker.tryStartRequest() == 3)
        let snapshot = breaker.snapshot()
        #expect(snapshot.requests == 3)
        #expect(snapshot.requestOverflows == 1)
    }

    @Test func pendingRequestsHaveTheirOwnLimit() {
        #expect(breaker.tryAddPending() == 1 && breaker.tryAddPending() == 2)
        #expect(breaker.tryAddPending() == nil)
        breaker.pendingEnded()
        #expect(breaker.tryAddPending() == 2)
        #expect(breaker.snapshot().pendingOverflows == 1)
    }

    /// A pool without any connection always gets one, past the limit.
    @Test func aForcedConnectionPassesTheLimit() {
        #expect(breaker.tryOpenConnection(force: false))
        #expect(!breaker.tryOpenConnection(force: false))
        #expect(breaker.tryOpenConnection(force: true))
        #expect(breaker.snapshot().connections == 2)
        breaker.connectionClosed()
        breaker.connectionClosed()
        #expect(breaker.snapshot().connections == 0)
        #expect(breaker.snapshot().connectionOverflows == 1)
    }

    @Test func retriesHaveTheirOwnLimit() {
        #expect(breaker.tryStartRetry())
        #expect(!breaker.tryStartRetry())
        breaker.retryFinished()
        #expect(breaker.tryStartRetry())
        let snapshot = breaker.snapshot()
        #expect(snapshot.retries == 1)
        #expect(snapshot.retryOverflows == 1)
    }
}
