import MeshConfig
import NIOCore
import Testing

@testable import MeshProxy

@Suite("Retry state")
struct RetryStateTests {
    private let now = NIODeadline.uptimeNanoseconds(5_000_000_000)

    private func state(attempts: Int = 2, bufferLimitBytes: Int = 8) -> RetryState {
        RetryState(rules: RetryRules(RetryPolicy(
            attempts: attempts, conditions: [.reset], bufferLimitBytes: bufferLimitBytes)))
    }

    @Test func keepsEveryPartUpToTheBufferLimit() {
        var retry = state()
        retry.keep(.body(ByteBuffer(string: "1234")))
        retry.keep(.body(ByteBuffer(string: "5678")))
        retry.keep(.end(nil))
        #expect(retry.replay == [.body(ByteBuffer(string: "1234")), .body(ByteBuffer(string: "5678")), .end(nil)])
        #expect(retry.replayBodyBytes == 8)
        retry.keep(.body(ByteBuffer(string: "9")))
        #expect(!retry.canReplay && retry.replay == nil)
        #expect(!retry.allowsRetry(after: .reset, tries: 1, deadline: nil, now: now))
    }

    @Test func allowsCoveredFailuresWhileTriesAndTimeAreLeft() {
        let retry = state(attempts: 1)
        #expect(retry.allowsRetry(after: .reset, tries: 1, deadline: nil, now: now))
        #expect(!retry.allowsRetry(after: .reset, tries: 2, deadline: nil, now: now))
        #expect(!retry.allowsRetry(after: .status(503), tries: 1, deadline: nil, now: now))
        #expect(!retry.allowsRetry(after: .reset, tries: 1, deadline: now, now: now))
        #expect(retry.allowsRetry(after: .reset, tries: 1, deadline: now + .nanoseconds(1), now: now))
    }

    @Test func aForwardedHeadEndsReplaying() {
        var retry = state()
        retry.keep(.end(nil))
        #expect(retry.holdsHead(tries: 1))
        retry.stopReplaying()
        #expect(!retry.holdsHead(tries: 1))
        retry.keep(.end(nil))
        #expect(retry.replay == nil)
    }
}
