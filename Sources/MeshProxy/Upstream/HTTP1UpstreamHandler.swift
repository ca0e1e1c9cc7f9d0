import NIOCore
import NIOHTTP1

/// The last handler of a pooled upstream HTTP/1.1 connection: it carries one
/// request at a time from its exchange to the endpoint and the response
/// back, and withholds reads while the client cannot take more
/// (backpressure from the slowest side, never unbounded buffering).
final class HTTP1UpstreamHandler: ChannelDuplexHandler, ExchangeUpstream {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private unowned let pool: HTTP1ConnectionPool
    private var context: ChannelHandlerContext?
    /// The request being served; nil while an HTTP/1.1 connection is idle in its pool.
    private var exchange: ProxyExchange?
    private var readPending = false
    private var requestComplete = false
    private var responseKeepAlive = true

    init(pool: HTTP1ConnectionPool, exchange: ProxyExchange?) {
        self.pool = pool
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

    /// The exchange ended before this connection could serve it (timeout,
    /// client gone): the unused connection goes back to its pool.
    func abandon() {
        exchange = nil
        pool.release(self)
    }

    /// Gives up on the request in progress: a connection cannot be reused
    /// mid-message, so it closes.
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
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A protocol error from the endpoint: the exchange learns of it through channelInactive.
        context.close(promise: nil)
    }

    /// After a complete response, the connection goes back to its pool when
    /// the whole request was sent and both sides allow keep-alive.
    private func responseFinished() {
        if requestComplete && responseKeepAlive {
            pool.release(self)
        } else {
            context?.close(promise: nil)
        }
    }
}
