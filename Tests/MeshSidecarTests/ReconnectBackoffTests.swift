import Testing

@testable import MeshSidecar

@Suite("ReconnectBackoff")
struct ReconnectBackoffTests {
    @Test func theCapDoublesUpToTheMaximumAndWaitsComeFromItsUpperHalf() {
        var backoff = ReconnectBackoff()
        let lowest = (0..<8).map { _ in backoff.next(unit: { 0 }) }
        #expect(lowest == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400),
                           .milliseconds(800), .milliseconds(1600), .milliseconds(2500), .milliseconds(2500)])
        #expect(backoff.next(unit: { 0.999 }) < ReconnectBackoff.max)
        backoff.reset()
        #expect(backoff.next(unit: { 0.5 }) == .milliseconds(75))
    }
}
