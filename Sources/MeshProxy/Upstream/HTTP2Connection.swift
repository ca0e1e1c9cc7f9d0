import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One multiplexed HTTP/2 connection to an endpoint. Sits after the HTTP/2
/// handler, where the connection-level frames arrive, to learn the peer's
/// SETTINGS_MAX_CONCURRENT_STREAMS and whether it is going away.
final class HTTP2Connection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    /// What RFC 9113 lets us assume before the peer's SETTINGS arrive is
    /// "unlimited"; 100 is the value peers advertise most, so start there.
    static let assumedMaxConcurrentStreams = 100

    private unowned let pool: HTTP2ConnectionPool
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let channel: Channel
    private(set) var activeStreams = 0
    private(set) var maxConcurrentStreams = HTTP2Connection.assumedMaxConcurrentStreams
    /// The peer sent GOAWAY, or the endpoint left its cluster: no new streams.
    private(set) var isClosing = false
    private(set) var isClosed = false

    init(pool: HTTP2ConnectionPool, multiplexer: NIOHTTP2Handler.StreamMultiplexer, channel: Channel) {
        self.pool = pool
        self.multiplexer = multiplexer
        self.channel = channel
    }

    var hasCapacity: Bool { !isClosing && !isClosed && activeStreams < maxConcurrentStreams }

    /// Opens a stream for `exchange`; the stream's handler attaches itself to
    /// the exchange once the stream channel is active.
    func openStream(for exchange: ProxyExchange) {
        activeStreams += 1
        let boundExchange = NIOLoopBound(exchange, eventLoop: channel.eventLoop)
        let boundSelf = NIOLoopBound(self, eventLoop: channel.eventLoop)
        let promise = channel.eventLoop.makePromise(of: Channel.self)
        multiplexer.createStreamChannel(promise: promise) { stream in
            stream.eventLoop.makeCompletedFuture {
                let handler = UpstreamStreamHandler(owner: .http2(boundSelf.value), exchange: boundExchange.value)
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http),
                    handler,
                ])
            }
        }
        promise.futureResult.assumeIsolated().whenFailure { _ in
            // The stream never opened, so its handler will not report closing.
            self.streamClosed()
            exchange.upstreamFailed(.upstreamReset)
        }
    }

    /// A stream of this connection finished (or failed to open).
    func streamClosed() {
        activeStreams -= 1
        if isClosing && activeStreams == 0 {
            channel.close(promise: nil)
        }
        pool.capacityFreed()
    }

    /// No new streams; close once the running ones finish.
    func closeGracefully() {
        isClosing = true
        if activeStreams == 0 {
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                maxConcurrentStreams = setting.value
            }
            pool.capacityFreed()
        case .goAway:
            isClosing = true
            if activeStreams == 0 {
                context.close(promise: nil)
            }
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
