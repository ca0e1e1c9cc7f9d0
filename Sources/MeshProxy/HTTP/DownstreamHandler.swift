import NIOCore
import NIOHTTP1

/// The last handler of a client's HTTP/1.1 connection or HTTP/2 stream (both
/// arrive as `HTTPServerRequestPart`s). It starts an exchange per request,
/// feeds it the request, writes what it answers, and withholds reads while
/// the upstream cannot take more.
///
/// HTTP/1.1 pipelining is handled here rather than by a handler that stops
/// reading during every response: that costs two epoll_ctl calls per
/// request. Requests that arrive while a response is still being written wait
/// in `pipelined` (bounded; reads pause when it is full) and start, in order,
/// when that response ends.
final class DownstreamHandler: ChannelDuplexHandler, ExchangeDownstream {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let connection: DownstreamConnectionInfo
    private let worker: LoopWorker
    private var context: ChannelHandlerContext?
    /// The request whose response is being produced.
    private var exchange: ProxyExchange?
    private var readPending = false
    /// HTTP/1.1: the client asked to close after this response (or spoke HTTP/1.0 without keep-alive).
    private var closeAfterResponse = false
    private var requestVersion = HTTPVersion.http1_1
    private var listener: ListenerLookup
    /// HTTP/1.1 request parts that arrived while an earlier response was still going out.
    private var pipelined = CircularBuffer<HTTPServerRequestPart>()
    private var pipelinedBodyBytes = 0
    /// A parse error that followed a pipelined request; answered when the requests before it are.
    private var pipelinedParseError: ProxyError?
    private var isStartingPipelined = false
    static let maxPipelinedParts = 64
    static let maxPipelinedBodyBytes = 64 * 1024

    init(connection: DownstreamConnectionInfo, worker: LoopWorker) {
        self.connection = connection
        self.worker = worker
        listener = ListenerLookup(name: connection.listenerName)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // A request that starts while a response is in progress waits its turn,
        // and so does everything read after it.
        if !pipelined.isEmpty || (exchange != nil && Self.isHead(part)) {
            pipelined.append(part)
            if case .body(let body) = part {
                pipelinedBodyBytes += body.readableBytes
            }
            return
        }
        deliver(part)
    }

    private static func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    private func deliver(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            startExchange(head)
        case .body(let body):
            // Without an exchange, the response ended before the request did: drop the rest.
            exchange?.downstreamReceived(.body(.byteBuffer(body)))
        case .end(let trailers):
            exchange?.downstreamReceived(.end(trailers))
        }
    }

    /// Starts the pipelined requests whose turn has come, in order.
    private func startPipelined() {
        guard !isStartingPipelined else { return }
        isStartingPipelined = true
        defer { isStartingPipelined = false }
        while let next = pipelined.first {
            if exchange != nil && Self.isHead(next) {
                return
            }
            pipelined.removeFirst()
            if case .body(let body) = next {
                pipelinedBodyBytes -= body.readableBytes
            }
            deliver(next)
        }
        if let error = pipelinedParseError, exchange == nil {
            pipelinedParseError = nil
            rejectMalformed(error)
        }
    }

    private func startExchange(_ head: HTTPRequestHead) {
        requestVersion = head.version
        closeAfterResponse = closeAfterResponse || !head.isKeepAlive
        let exchange = ProxyExchange(for: head, downstream: self, worker: worker)
        self.exchange = exchange
        exchange.start(head: head, listener: listener.current(in: worker))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if exchange?.shouldPauseDownstreamReads ?? false
            || pipelined.count >= Self.maxPipelinedParts || pipelinedBodyBytes >= Self.maxPipelinedBodyBytes {
            readPending = true
            return
        }
        context.read()
    }

    /// The upstream can take more request bytes.
    func resumeReads() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.downstreamBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pipelined.removeAll()
        exchange?.downstreamClosed()
        context.fireChannelInactive()
    }

    /// Drain: an HTTP/1.1 connection closes now if idle, else after the
    /// response in progress (HTTP/2 connections drain with GOAWAY instead).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, !connection.isHTTP2 else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        pipelined.removeAll()
        pipelinedBodyBytes = 0
        if exchange == nil {
            context.close(promise: nil)
        } else {
            closeAfterResponse = true
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parseError = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        let proxyError = Self.proxyError(for: parseError)
        if !pipelined.isEmpty || (exchange?.hasWholeRequest ?? false) {
            // The bad bytes follow a complete request that is still being answered.
            pipelinedParseError = proxyError
        } else if let exchange {
            exchange.downstreamMalformed(proxyError)
        } else {
            rejectMalformed(proxyError)
        }
    }

    private func rejectMalformed(_ error: ProxyError) {
        let requestID = RequestID.generate(using: &worker.random)
        let rejected = ProxyExchange(downstream: self, worker: worker, requestID: requestID, isGRPC: false)
        exchange = rejected
        rejected.fail(error)
    }

    private static func proxyError(for error: HTTPParserError) -> ProxyError {
        switch error {
        case .headerOverflow:
            return .headersTooLarge
        case .unexpectedContentLength:
            return .badRequest("Content-Length together with Transfer-Encoding, or conflicting Content-Length values")
        case .invalidContentLength:
            return .badRequest("invalid Content-Length")
        default:
            return .badRequest(String(describing: error))
        }
    }

    // MARK: Responses out (called by the exchange)

    func write(_ part: HTTPServerResponsePart, flush: Bool) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    func flush() {
        context?.flush()
    }

    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        var headers = headers
        if closeAfterResponse {
            headers.add(name: "connection", value: "close")
        }
        write(.head(HTTPResponseHead(version: requestVersion, status: status, headers: headers)), flush: false)
    }

    /// Ends the response; an HTTP/1.1 connection that must not be reused closes once it is written.
    func writeEnd(trailers: HTTPHeaders?) {
        guard let context else { return }
        if closeAfterResponse {
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }

    /// Writes the proxy's own answer for `error`; returns the status sent.
    func writeLocalResponse(for error: ProxyError, isGRPC: Bool, requestID: String) -> HTTPResponseStatus {
        if error.closesConnection && !connection.isHTTP2 {
            closeAfterResponse = true
        }
        let response = LocalResponse.parts(
            for: error, isGRPC: isGRPC, requestID: requestID,
            closeConnection: closeAfterResponse && !connection.isHTTP2,
            allocator: context?.channel.allocator ?? ByteBufferAllocator()
        )
        var head = response.head
        head.version = connection.isHTTP2 ? .http2 : requestVersion
        write(.head(head), flush: false)
        if let body = response.body {
            write(.body(.byteBuffer(body)), flush: false)
        }
        writeEnd(trailers: response.trailers)
        return head.status
    }

    /// The response cannot be completed: HTTP/1.1 closes the connection, HTTP/2 resets the stream.
    func abortResponse() {
        context?.close(promise: nil)
    }

    func exchangeFinished(_ finished: ProxyExchange) {
        if exchange === finished {
            exchange = nil
        }
        if !closeAfterResponse {
            startPipelined()
        }
        resumeReads()
    }
}
