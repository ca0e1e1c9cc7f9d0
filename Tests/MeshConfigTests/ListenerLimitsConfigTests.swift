import MeshConfig
import Testing

@Suite("Listener limits: what one client connection may make the proxy hold")
struct ListenerLimitsConfigTests {
    private func limits(_ yaml: String) throws -> ListenerLimits {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: \(yaml)"),
        ]))
        return try #require(config.listeners.first?.limits)
    }

    @Test func everyLimitHasADefault() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener()]))
        let limits = try #require(config.listeners.first?.limits)
        #expect(limits.maxConcurrentStreams == 100)
        #expect(limits.perConnectionBufferLimitBytes == 1_048_576)
        #expect(limits.requestHeadersTimeout == .seconds(10))
        #expect(limits.streamIdleTimeout == .seconds(300))
        #expect(limits.maxShareOfClusterRequests == 50)
    }

    @Test func eachKeyIsRead() throws {
        let read = try limits("""
            { maxConcurrentStreams: 7, perConnectionBufferLimitBytes: 65536, requestHeadersTimeout: 2s,
              streamIdleTimeout: 30s, maxShareOfClusterRequests: 100 }
            """)
        #expect(read == ListenerLimits(
            maxConcurrentStreams: 7, perConnectionBufferLimitBytes: 65536, requestHeadersTimeout: .seconds(2),
            streamIdleTimeout: .seconds(30), maxShareOfClusterRequests: 100))
    }

    @Test func outOfRangeValuesNameTheFieldAndTheBound() {
        #expect(onlyIssue(Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { perConnectionBufferLimitBytes: 1000 }"),
        ])) == ConfigIssue(
            path: "listeners[0].limits.perConnectionBufferLimitBytes",
            message: "is 1000 bytes; it must be at least 16384 (16 KiB), the size of one HTTP/2 frame, so every stream can make progress"))
        #expect(onlyIssue(Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { maxShareOfClusterRequests: 150 }"),
        ])) == ConfigIssue(
            path: "listeners[0].limits.maxShareOfClusterRequests", message: "expected a positive integer up to 100, got 150"))
        #expect(onlyIssue(Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { maxConcurrentStreams: 0 }"),
        ]))?.path == "listeners[0].limits.maxConcurrentStreams")
        #expect(onlyIssue(Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { streamIdleTimeout: 0s }"),
        ]))?.path == "listeners[0].limits.streamIdleTimeout")
        #expect(onlyIssue(Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { requestHeadersTimeout: soon }"),
        ]))?.path == "listeners[0].limits.requestHeadersTimeout")
    }

    /// A sidecar's outbound listener serves only the app beside it.
    @Test func appOutboundKeepsTheAppUncapped() {
        #expect(ListenerLimits.appOutbound.maxConcurrentStreams == 1024)
        #expect(ListenerLimits.appOutbound.maxShareOfClusterRequests == 100)
        #expect(ListenerLimits.appOutbound.streamIdleTimeout == ListenerLimits.defaultStreamIdleTimeout)
    }
}
