import MeshHTTP1
import MeshLoopIO
import NIOCore
import NIOHTTP1

/// A client's HTTP/1.1 connection, the only handler behind the protocol
/// detector: it parses requests from the bytes read, starts an exchange per
/// request, and writes each response straight into the connection's outbound
/// buffer, so a response usually leaves in one write.
///
/// Pipelined requests stay unparsed in the parser's buffer until the
/// response before them is complete, and are then answered in order. Reads
/// pause only when that buffer is full or the upstream cannot take the
/// request body; pausing costs two epoll_ctl calls, so it is never done per request.
///
/// Bounded per client (`ListenerLimits`): between requests, nothing more is
/// read or answered while the client does not read what was written (so
/// answers the proxy makes itself cannot pile up either); a request head
/// must arrive within `requestHeadersTimeout` of its first byte (408); a
/// request with no bytes either way for `streamIdleTimeout` ends.
final class HTTP1DownstreamConnection: ChannelDuplexHandler, ExchangeDownstream, BatchedFlushTarget {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Unparsed bytes a connection may hold while a response is in progress.
    static let maxBufferedRequestBytes = 64 * 1024
    /// After an answer to a request the proxy refused (400, 431), how
    /// long and how many more bytes the connection reads and drops before
    /// it closes (see `closeAfterWriting`).
    static let lingerTime = TimeAmount.seconds(2)
    static let maxLingerBytes = 1 << 20

    let connection: DownstreamConnectionInfo
    let worker: LoopWorker
    var context: ChannelHandlerContext?
    private var listener: ListenerLookup
    var parser: HTTP1Parser
    var outbound: HTTP1Outbound
    /// The exchange whose response is being produced.
    var exchange: ProxyExchange?
    /// The request being parsed has not ended (its body is still arriving).
    private var requestInProgress = false
    private var isProcessing = false
    private var readPending = false
    var flushScheduled = false
    /// The connection closes once the current response is written: the client
    /// asked for it, a malformed request was answered, or the proxy is draining.
    var closeAfterResponse = false
    var requestVersion = HTTPVersion.http1_1
    var requestIsHEAD = false
    /// The response head waits for the next part, which tells how to frame the
    /// body: a head followed by its end needs neither chunks nor a close.
    var pendingHead: (status: HTTPResponseStatus, headers: HTTPHeaders)?
    let idleTimer: IdleTimer
    /// The answer refused the request while the client may still be sending
    /// it: the close lingers.
    var lingersOnClose = false
    /// Bytes the lingering close may still drop; nil while not lingering.
    var lingerBytesLeft: Int?
    /// When the first byte of the request head being waited for came; nil
    /// while no head is awaited or none of it came.
    private var headStarted: NIODeadline?
    private var headCheck: Scheduled<Void>?
    /// Ends an exchange with no bytes either way for `streamIdleTimeout`.
    let streamIdleTimer: IdleTimer

    /// `headStarted`: when the first request's first byte came.
    init(connection: DownstreamConnectionInfo, worker: LoopWorker, headStarted: NIODeadline) {
        self.headStarted = headStarted
        self.connection = connection
        self.worker = worker
        var listener = ListenerLookup(name: connection.listenerName)
        let limit = listener.current(in: worker)?.limits.maxRequestHeaderBytes ?? 0
        self.listener = listener
        // Heads within twice the listener's limit are parsed so the exchange
        // can answer exactly (431 with the reason); longer ones are refused outright.
        parser = HTTP1Parser(kind: .request, maxHeadBytes: max(80 * 1024, 2 * limit + 4096))
        outbound = HTTP1Outbound(allocator: ByteBufferAllocator())
        idleTimer = IdleTimer(timeout: connection.idleTimeout)
        streamIdleTimer = IdleTimer(timeout: connection.limits.streamIdleTimeout, keepsWatching: true)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        idleTimer.start(on: context.eventLoop) { [weak self] in
            self.map { $0.exchange == nil && !$0.requestInProgress } ?? false
        } close: { [weak self] in
            self?.context?.close(promise: nil)
        }
        // Only time with an exchange counts; between requests the idle timer watches.
        streamIdleTimer.start(on: context.eventLoop) { [weak self] in
            self?.exchange != nil
        } close: { [weak self] in
            self?.streamIdleTimedOut()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.stop()
        streamIdleTimer.stop()
        headCheck?.cancel()
        headCheck = nil
        self.context = nil
    }

    // MARK: Requests in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let left = lingerBytesLeft {
            let dropped = unwrapInboundIn(data).readableBytes
            lingerBytesLeft = left - dropped
            if left <= dropped {
                context.close(promise: nil)
            }
            return
        }
        // A closing connection parses no more requests: what the client sends
        // now is dropped, not kept until the close.
        guard !isDone else { return }
        idleTimer.touch()
        streamIdleTimer.touch()
        parser.append(unwrapInboundIn(data))
        processRequests()
    }

    /// No more requests will be read: the connection closes after the response in progress.
    private var isDone: Bool { closeAfterResponse && !requestInProgress }

    /// Hands parsed request parts to exchanges until the parser needs more
    /// bytes or the next request must wait for the current response.
    func processRequests() {
        guard !isProcessing else { return }
        isProcessing = true
        defer {
            isProcessing = false
            watchRequestHead()
        }
        while requestInProgress || (exchange == nil && !closeAfterResponse && mayAnswer) {
            let event: HTTP1Parser.Event?
            do {
                event = try parser.next()
            } catch {
                parseFailed(error)
                return
            }
            switch event {
            case .request(let head, let framing):
                requestInProgress = true
                startExchange(head, framing: framing)
            case .body(let body):
                // Without an exchange, the response ended before the request did: the rest is dropped.
                exchange?.downstreamReceived(.body(body))
            case .end(let trailers):
                requestInProgress = false
                exchange?.downstreamReceived(.end(trailers))
            case .response, nil:
                return
            }
        }
    }

    /// Whether the next request may be answered now: the client reads what
    /// it was sent (the socket takes writes and little waits for the next
    /// flush). Otherwise it waits in the parser's buffer, which the reads stop filling.
    private var mayAnswer: Bool {
        isWritable && outbound.gatheredBytes < connection.limits.bufferLimitBytes
    }

    private func startExchange(_ head: HTTPRequestHead, framing: HTTP1Framing) {
        headStarted = nil
        streamIdleTimer.touch()
        requestVersion = head.version
        requestIsHEAD = head.method == .HEAD
        closeAfterResponse = closeAfterResponse || !framing.keepAlive
        let exchange = ProxyExchange(for: head, hasBody: framing.hasBody, downstream: self, worker: worker)
        self.exchange = exchange
        exchange.start(head: head, listener: listener.current(in: worker))
    }

    private func parseFailed(_ error: HTTP1ParseError) {
        let proxyError: ProxyError
        switch error {
        case .headTooLarge: proxyError = .headersTooLarge
        case .malformed(let reason): proxyError = .badRequest(reason)
        }
        closeAfterResponse = true
        lingersOnClose = true
        let inProgress = requestInProgress
        requestInProgress = false
        if let exchange {
            if inProgress {
                exchange.fail(proxyError)
            }
        } else {
            refuseUnreadRequest(proxyError)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if lingerBytesLeft != nil {
            context.read()
            return
        }
        let waitingRequestsFull = exchange != nil && !requestInProgress
            && parser.bufferedBytes >= Self.maxBufferedRequestBytes
        // Between requests, a client that does not read its answers is not read either.
        let answersUnread = !requestInProgress && !context.channel.isWritable
        if isDone || waitingRequestsFull || answersUnread || (exchange?.shouldPauseDownstreamReads ?? false) {
            if answersUnread && exchange == nil && !readPending {
                worker.stats.limitReached(listener: connection.listenerLabel, .unreadAnswers)
            }
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
            // This may run inside `outbound.flush` (the write that drained
            // the socket): the next request is answered once it returned.
            context.eventLoop.assumeIsolated().execute { [self] in
                processRequests()
                resumeReads()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Limits

    /// Starts or stops the `requestHeadersTimeout` clock: it runs while the
    /// connection waits for a request head of which some bytes came.
    /// Time the proxy itself holds the head back (its answers unread) does not count.
    private func watchRequestHead() {
        guard exchange == nil, !requestInProgress, !isDone, mayAnswer, parser.bufferedBytes > 0 else {
            headStarted = nil
            return
        }
        if headStarted == nil {
            headStarted = context?.eventLoop.now ?? .now()
        }
        if headCheck == nil {
            scheduleHeadCheck()
        }
    }

    private func scheduleHeadCheck() {
        guard let started = headStarted, let context else { return }
        let deadline = started + connection.limits.requestHeadersTimeout
        headCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            headCheck = nil
            guard let started = headStarted else { return }
            if context.eventLoop.now >= started + connection.limits.requestHeadersTimeout {
                requestHeadTimedOut()
            } else {
                scheduleHeadCheck()
            }
        }
    }

    /// The head did not arrive whole in time: 408, and the connection closes.
    private func requestHeadTimedOut() {
        headStarted = nil
        worker.stats.limitReached(listener: connection.listenerLabel, .requestHeadersTimeout)
        closeAfterResponse = true
        refuseUnreadRequest(.requestHeadersTimeout)
    }

    /// Answers a request whose head was never read whole (it did not parse,
    /// or did not arrive in time) with the proxy's error, through an
    /// exchange of its own so it is counted and recorded like any other.
    private func refuseUnreadRequest(_ error: ProxyError) {
        // The answer is framed for the request that failed, not the one before it.
        requestIsHEAD = false
        requestVersion = .http1_1
        let rejected = ProxyExchange(
            downstream: self, worker: worker, requestID: RequestID.generate(using: &worker.random), isGRPC: false,
            hasBody: false)
        exchange = rejected
        rejected.fail(error)
    }

    /// The exchange in progress had no bytes either way for `streamIdleTimeout`.
    private func streamIdleTimedOut() {
        guard let exchange else { return }
        worker.stats.limitReached(listener: connection.listenerLabel, .streamIdleTimeout)
        exchange.streamIdleTimedOut()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer.stop()
        closeAfterResponse = true
        exchange?.downstreamClosed()
        context.fireChannelInactive()
    }

    /// Drain: the connection closes now if idle, else after the response in progress.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        closeAfterResponse = true
        if exchange == nil {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
