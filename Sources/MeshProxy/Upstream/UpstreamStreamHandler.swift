import NIOCore
import NIOHTTP1

/// The last handler of an upstream HTTP/1.1 connection or HTTP/2 stream: it
/// carries one request at a time from its exchange to the endpoint and the
/// response back, and withholds reads while the client cannot take more
/// (backpressure from the slowest side, never unbounded buffering).
final class UpstreamStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    enum Owner {
        /// A pooled HTTP/1.1 connection, reused for one request after another.
        case http1(HTTP1ConnectionPool)
        /// One stream of a multiplexed HTTP/2 connection, used once.
        case http2(HTTP2Connection)
    }

    private let owner: Owner
    private var context: ChannelHandlerContext?
    /// The request being served; nil while an HTTP/1.1 connection is idle in its pool.
    private var exchange: ProxyExchange?
    private var readPending = false
    private var requestComplete = false
    private var responseKeepAlive = true

    init(owner: Owner, exchange: ProxyExchange?) {
        self.owner = owner
        self.exchange = exchange
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let exchange, context.channel.isActive {
            exchange.upstreamAttached(self)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        // An HTTP/2 stream becomes active after its initializer ran.
        if let exchange, case .http2 = owner {
            exchange.upstreamAttached(self)
        }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Starts serving `exchange` on this (idle, pooled HTTP/1.1) connection.
    func attach(_ exchange: ProxyExchange) {
        self.exchange = exchange
        requestComplete = false
        responseKeepAlive = true
        exchange.upstreamAttached(self)
    }

    // MARK: Request direction (called by the exchange)

    func write(_ part: HTTPClientRequestPart) {
        guard let context else { return }
        if case .end = part {
            requestComplete = true
        }
        context.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The client can take more response bytes again.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The exchange ended before this connection or stream could serve it
    /// (timeout, client gone): an unused HTTP/1.1 connection goes back to its
    /// pool; an unused HTTP/2 stream closes without having sent anything.
    func abandon() {
        exchange = nil
        switch owner {
        case .http1(let pool):
            pool.release(self)
        case .http2:
            context?.close(promise: nil)
        }
    }

    /// Gives up on the request in progress: an HTTP/1.1 connection cannot be
    /// reused mid-message, so it closes; an HTTP/2 stream is reset.
    func abort() {
        exchange = nil
        context?.close(promise: nil)
    }

    // MARK: Response direction

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let exchange else { return }
        switch part {
        case .head(let head):
            responseKeepAlive = head.isKeepAlive
            exchange.upstreamReceived(part)
        case .body:
            exchange.upstreamReceived(part)
        case .end:
            self.exchange = nil
            exchange.upstreamReceived(part)
            responseFinished()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushDownstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.downstreamIsWritable {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.upstreamBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.upstreamFailed(.upstreamReset)
        }
        switch owner {
        case .http1(let pool):
            pool.connectionClosed(self)
        case .http2(let connection):
            connection.streamClosed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A protocol error from the endpoint: the exchange learns of it through channelInactive.
        context.close(promise: nil)
    }

    /// After a complete response, an HTTP/1.1 connection goes back to its pool
    /// when the whole request was sent and both sides allow keep-alive.
    private func responseFinished() {
        guard case .http1(let pool) = owner else { return }
        if requestComplete && responseKeepAlive {
            pool.release(self)
        } else {
            context?.close(promise: nil)
        }
    }
}
