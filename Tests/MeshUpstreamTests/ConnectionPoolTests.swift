import MeshLoopIO
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshUpstream

/// The pools without sockets: connections are embedded channels the test
/// hands out when it likes, the circuit breaker is a counter, and a try is
/// a recorder of what the pool told it.
@Suite("Connection pools")
struct ConnectionPoolTests {
    final class Breaker: PoolBreaker, @unchecked Sendable {
        var pending = 0
        var maxPending = 10
        var connections = 0
        var maxConnections = 10

        func tryAddPending() -> Int? {
            guard pending < maxPending else { return nil }
            pending += 1
            return pending
        }

        func pendingEnded() { pending -= 1 }

        func tryOpenConnection(force: Bool) -> Bool {
            guard force || connections < maxConnections else { return false }
            connections += 1
            return true
        }

        func connectionClosed() { connections -= 1 }
    }

    final class Request: UpstreamRequest {
        private(set) var events: [String] = []
        private(set) var upstream: (any ExchangeUpstream)?
        var leftTheQueue = false

        var isWaitingForConnection: Bool { !leftTheQueue && upstream == nil }
        func queued(pendingRequests: Int) { events.append("queued \(pendingRequests)") }
        func connectionReady(_ upstream: any ExchangeUpstream) {
            self.upstream = upstream
            events.append("ready")
        }
        func failed(_ failure: UpstreamFailure) { events.append("failed \(failure)") }
        func refused() { events.append("refused") }
        func received(_ part: HTTPClientResponsePart) {
            switch part {
            case .head(let head): events.append("head \(head.status.code)")
            case .body: events.append("body")
            case .end:
                upstream = nil
                events.append("end")
            }
        }
        func readComplete() {}
        var clientIsReading: Bool { true }
        func endpointBecameWritable() {}

        /// Sends a bodiless GET on the connection it was given.
        func sendGET() {
            upstream?.writeHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), hasBody: false)
            upstream?.writeEnd(trailers: nil)
            upstream?.flush()
        }
    }

    /// Connects when the test says so: each `connect` is a promise in `attempts`.
    final class Dialing {
        let loop = EmbeddedEventLoop()
        let breaker = Breaker()
        private(set) var attempts: [EventLoopPromise<Channel>] = []

        var dialer: EndpointDialer {
            EndpointDialer(
                eventLoop: loop, flushBatch: FlushBatch(eventLoop: loop), breaker: breaker, idleTimeout: .seconds(60)
            ) { [self] in
                let promise = loop.makePromise(of: Channel.self)
                attempts.append(promise)
                return promise.futureResult
            }
        }

        /// Completes attempt `index` with a connected channel, and returns it.
        @discardableResult
        func connect(_ index: Int) throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
            attempts[index].succeed(channel)
            return channel
        }
    }

    private static let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    @Test func aRequestCountsAsPendingUntilItsConnectionIsReady() throws {
        let dialing = Dialing()
        let pool = HTTP1ConnectionPool(dialer: dialing.dialer)
        let request = Request()
        pool.acquire(for: request)
        #expect(request.events == ["queued 1"])
        #expect(dialing.breaker.pending == 1 && dialing.breaker.connections == 1 && dialing.attempts.count == 1)
        try dialing.connect(0)
        #expect(request.events == ["queued 1", "ready"])
        #expect(dialing.breaker.pending == 0)
    }

    @Test func atMaxConnectionsTheOldestWaiterGetsTheConnectionThatComesFree() throws {
        let dialing = Dialing()
        dialing.breaker.maxConnections = 1
        let pool = HTTP1ConnectionPool(dialer: dialing.dialer)
        let first = Request()
        let second = Request()
        pool.acquire(for: first)
        pool.acquire(for: second)
        #expect(dialing.attempts.count == 1, "the cluster is at maxConnections")
        let channel = try dialing.connect(0)
        #expect(first.events.last == "ready" && second.events == ["queued 2"])
        first.sendGET()
        try channel.writeInbound(ByteBuffer(string: Self.ok))
        #expect(first.events.suffix(2) == ["head 200", "end"])
        // Handed over on the loop's next turn, once the read that ended the response is done.
        #expect(second.events == ["queued 2"])
        dialing.loop.run()
        #expect(second.events == ["queued 2", "ready"])
        #expect(dialing.breaker.pending == 0 && dialing.breaker.connections == 1)
    }

    @Test func aFailedConnectFailsTheRequestThatWaitedLongest() throws {
        let dialing = Dialing()
        let pool = HTTP1ConnectionPool(dialer: dialing.dialer)
        let first = Request()
        let second = Request()
        pool.acquire(for: first)
        pool.acquire(for: second)
        #expect(dialing.attempts.count == 2)
        dialing.attempts[0].fail(ChannelError.connectTimeout(.seconds(1)))
        #expect(first.events == ["queued 1", "failed connectFailure"])
        #expect(second.events == ["queued 2"])
        #expect(dialing.breaker.pending == 1 && dialing.breaker.connections == 1)
        try dialing.connect(1)
        #expect(second.events.last == "ready")
        #expect(dialing.breaker.pending == 0)
    }

    @Test func pastMaxPendingRequestsNothingIsCountedOrOpened() {
        let dialing = Dialing()
        dialing.breaker.maxPending = 0
        let pool = HTTP1ConnectionPool(dialer: dialing.dialer)
        let request = Request()
        pool.acquire(for: request)
        #expect(request.events == ["failed pendingOverflow"])
        #expect(dialing.attempts.isEmpty && dialing.breaker.pending == 0 && dialing.breaker.connections == 0)
    }

    @Test func aRequestThatLeavesTheQueueGivesItsSlotBackAndTheConnectionIdles() throws {
        let dialing = Dialing()
        let pool = HTTP1ConnectionPool(dialer: dialing.dialer)
        let gone = Request()
        pool.acquire(for: gone)
        gone.leftTheQueue = true
        pool.stopWaiting(gone)
        #expect(dialing.breaker.pending == 0)
        try dialing.connect(0)
        #expect(gone.events == ["queued 1"], "nothing reaches a request that left")
        let next = Request()
        pool.acquire(for: next)
        #expect(next.events == ["ready"], "the idle connection serves at once, without waiting")
        #expect(dialing.attempts.count == 1)
    }

    @Test func http2WaitersFailTogetherWhenNothingIsLeftToWaitFor() {
        let dialing = Dialing()
        let pool = HTTP2ConnectionPool(dialer: dialing.dialer)
        let requests = [Request(), Request(), Request()]
        for request in requests {
            pool.acquire(for: request)
        }
        #expect(dialing.attempts.count == 1, "one connection in progress serves the first hundred waiters")
        #expect(dialing.breaker.pending == 3)
        dialing.attempts[0].fail(ChannelError.connectTimeout(.seconds(1)))
        #expect(requests.map(\.events.last) == Array(repeating: "failed connectFailure", count: 3))
        #expect(dialing.breaker.pending == 0 && dialing.breaker.connections == 0)
    }
}
