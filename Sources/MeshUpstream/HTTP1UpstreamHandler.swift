import MeshHTTP1
import MeshLoopIO
import NIOCore
import NIOHTTP1

/// The only handler of a pooled upstream HTTP/1.1 connection: it writes one
/// request at a time from its try to the endpoint, parses the response
/// and hands it back, and withholds reads while the client cannot take more
/// (backpressure from the slowest side, never unbounded buffering).
package final class HTTP1UpstreamHandler: ChannelDuplexHandler, ExchangeUpstream, BatchedFlushTarget {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// Response heads longer than this are a protocol error.
    package static let maxResponseHeadBytes = 80 * 1024

    /// Strong: a connection outlives its pool's place in the cluster when
    /// the endpoint leaves (the pool drains), and tells the pool when it
    /// closes. The cycle with the pool's connection list ends at that close.
    private let pool: HTTP1ConnectionPool
    private var context: ChannelHandlerContext?
    /// The try being served; nil while the connection is idle in its pool.
    private var request: (any UpstreamRequest)?
    private var parser = HTTP1Parser(kind: .response, maxHeadBytes: HTTP1UpstreamHandler.maxResponseHeadBytes)
    private var outbound = HTTP1Outbound(allocator: ByteBufferAllocator())
    private var readPending = false
    private var flushScheduled = false
    private var requestComplete = false
    private var responseKeepAlive = true
    /// An interim (1xx) response is being skipped: the proxy answers Expect itself.
    private var skippingInterim = false
    /// The connection failed (a reset, not a close): a body read until close is cut short.
    private var failed = false
    private let idleTimer: IdleTimer

    package init(pool: HTTP1ConnectionPool) {
        self.pool = pool
        idleTimer = IdleTimer(timeout: pool.dialer.idleTimeout)
    }

    package var isActive: Bool { context?.channel.isActive ?? false }
    package var isWritable: Bool { context?.channel.isWritable ?? false }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Unused in the pool for the cluster's idleTimeout: closed (and so out
        // of the pool) before the endpoint's own keep-alive timeout can race a request.
        idleTimer.start(on: context.eventLoop) { [weak self] in
            self?.request == nil
        } close: { [weak self] in
            self?.context?.close(promise: nil)
        }
        if context.channel.isActive {
            pool.connected(self)
        } else {
            // Closed before the handler was added: `channelInactive` will not come.
            idleTimer.stop()
            pool.connectionClosed(self)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.stop()
        self.context = nil
    }

    /// Starts serving `request` on this (idle, pooled HTTP/1.1) connection.
    package func attach(_ request: any UpstreamRequest) {
        self.request = request
        requestComplete = false
        responseKeepAlive = true
        request.connectionReady(self)
    }

    // MARK: Request direction (called by the try)

    /// The request line and fields; the body keeps the client's Content-Length,
    /// or goes in chunks when its length is unknown.
    package func writeHead(_ head: HTTPRequestHead, hasBody: Bool) {
        parser.respondingToHEAD = head.method == .HEAD
        outbound.writeRequestLine(method: head.method, uri: head.uri)
        outbound.writeFields(head.headers)
        let framing: HTTP1Outbound.Framing
        if head.headers.contains(name: "content-length") {
            framing = .raw
        } else if hasBody {
            framing = .chunked
        } else {
            // Servers may refuse these methods without a length (411).
            if head.method == .POST || head.method == .PUT || head.method == .PATCH {
                outbound.writeField("content-length", "0")
            }
            framing = .none
        }
        outbound.endHead(framing: framing)
    }

    package func writeBody(_ body: ByteBuffer) {
        guard let context else { return }
        outbound.writeBody(body, context: context)
    }

    package func writeEnd(trailers: HTTPHeaders?) {
        requestComplete = true
        outbound.writeEnd(trailers: trailers)
    }

    /// The request bytes go out at the end of the loop iteration, with every
    /// other connection's: see `FlushBatch`.
    package func flush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        pool.dialer.flushBatch.schedule(self)
    }

    package func flushBatched() {
        flushScheduled = false
        guard let context else { return }
        outbound.flush(context)
    }

    /// The client can take more response bytes again.
    package func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The try ended before this connection could serve it (timeout,
    /// client gone): the unused connection goes back to its pool.
    package func abandon() {
        request = nil
        idleTimer.touch()
        pool.release(self)
    }

    /// Gives up on the request in progress: a connection cannot be reused
    /// mid-message, so it closes.
    package func abort() {
        request = nil
        context?.close(promise: nil)
    }

    // MARK: Response direction

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard request != nil else {
            // Bytes on an idle connection: it cannot be trusted for another request.
            context.close(promise: nil)
            return
        }
        parser.append(unwrapInboundIn(data))
        do {
            while request != nil, let event = try parser.next() {
                deliver(event)
            }
        } catch {
            // A response that is not HTTP/1.1: the try learns of it through channelInactive.
            context.close(promise: nil)
            return
        }
        if request == nil && parser.bufferedBytes > 0 {
            // More than the response: the connection cannot be trusted for another request.
            context.close(promise: nil)
        }
    }

    private func deliver(_ event: HTTP1Parser.Event) {
        guard let request else { return }
        switch event {
        case .response(let head, let framing):
            if head.status.code < 200 {
                // 101 would switch protocols, which the proxy does not carry.
                if head.status.code == 101 {
                    context?.close(promise: nil)
                }
                skippingInterim = true
                return
            }
            responseKeepAlive = framing.keepAlive
            request.received(.head(head))
        case .body(let body):
            request.received(.body(body))
        case .end(let trailers):
            if skippingInterim {
                skippingInterim = false
                return
            }
            self.request = nil
            request.received(.end(trailers))
            responseFinished()
        case .request:
            break  // a response parser returns no requests
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        request?.readComplete()
        context.fireChannelReadComplete()
    }

    package func read(context: ChannelHandlerContext) {
        if let request, !request.clientIsReading {
            readPending = true
            return
        }
        context.read()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            request?.endpointBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        idleTimer.stop()
        // A response without a length ends when the endpoint closes, cleanly.
        if !failed, let end = parser.endOfInput() {
            deliver(end)
        }
        if let request {
            self.request = nil
            request.failed(.reset)
        }
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        // The try learns of the failure through channelInactive.
        failed = true
        context.close(promise: nil)
    }

    /// After a complete response, the connection goes back to its pool when
    /// the whole request was sent and both sides allow keep-alive.
    private func responseFinished() {
        if requestComplete && responseKeepAlive {
            idleTimer.touch()
            pool.release(self)
        } else {
            context?.close(promise: nil)
        }
    }
}
