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
    private let worker: LoopWorker
    private var context: ChannelHandlerContext?
    private var listener: ListenerLookup
    private var parser: HTTP1Parser
    private var outbound: HTTP1Outbound
    /// The exchange whose response is being produced.
    private var exchange: ProxyExchange?
    /// The request being parsed has not ended (its body is still arriving).
    private var requestInProgress = false
    private var isProcessing = false
    private var readPending = false
    private var flushScheduled = false
    /// The connection closes once the current response is written: the client
    /// asked for it, a malformed request was answered, or the proxy is draining.
    private var closeAfterResponse = false
    private var requestVersion = HTTPVersion.http1_1
    private var requestIsHEAD = false
    /// The response head waits for the next part, which tells how to frame the
    /// body: a head followed by its end needs neither chunks nor a close.
    private var pendingHead: (status: HTTPResponseStatus, headers: HTTPHeaders)?
    private let idleTimer: IdleTimer
    /// The answer refused the request while the client may still be sending
    /// it: the close lingers.
    private var lingersOnClose = false
    /// Bytes the lingering close may still drop; nil while not lingering.
    private var lingerBytesLeft: Int?
    /// When the first byte of the request head being waited for came; nil
    /// while no head is awaited or none of it came.
    private var headStarted: NIODeadline?
    private var headCheck: Scheduled<Void>?
    /// Ends an exchange with no bytes either way for `streamIdleTimeout`.
    private let streamIdleTimer: IdleTimer

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
    private func processRequests() {
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

    // MARK: Responses out (called by the exchange)

    func writeInterim(_ status: HTTPResponseStatus) {
        outbound.writeStatusLine(status)
        outbound.endHead(framing: .none)
        flush()
    }

    /// Responses go out at the end of the loop iteration, all connections'
    /// together: a client that is woken once reads them all, instead of being
    /// woken (at the cost of an inter-processor interrupt) for each one.
    func flush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        worker.flushBatch.schedule(self)
    }

    func flushBatched() {
        flushScheduled = false
        guard let context else { return }
        // A streamed response: its head goes now, the body will follow.
        if let head = pendingHead {
            startResponse(head, endsNow: false, hasTrailers: false)
        }
        outbound.flush(context)
        // Requests held back while the answers gathered past the buffer
        // limit go on if the socket took them (else at its writability change).
        if exchange == nil && !closeAfterResponse && parser.bufferedBytes > 0 {
            processRequests()
            resumeReads()
        }
    }

    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        streamIdleTimer.touch()
        pendingHead = (status, headers)
    }

    func writeBody(_ body: ByteBuffer) {
        guard let context else { return }
        streamIdleTimer.touch()
        if let head = pendingHead {
            startResponse(head, endsNow: false, hasTrailers: false)
        }
        outbound.writeBody(body, context: context)
    }

    /// Ends the response; a connection that must not be reused closes once it is written.
    func writeEnd(trailers: HTTPHeaders?) {
        guard let context else { return }
        if let head = pendingHead {
            startResponse(head, endsNow: true, hasTrailers: !(trailers?.isEmpty ?? true))
        }
        outbound.writeEnd(trailers: trailers)
        if closeAfterResponse {
            closeAfterWriting(context)
        } else {
            flush()
        }
    }

    /// Writes what is pending, then closes. After a refused request the
    /// close lingers, as nginx's does: a client still sending (a 200 KB
    /// header block answered with 431) would otherwise find its unread
    /// bytes turned into a reset by the kernel, which discards the answer
    /// before the client reads it. So the proxy ends its side (FIN after the
    /// answer), reads and drops what comes for up to `lingerTime` and
    /// `maxLingerBytes`, and closes when the client does or a bound is reached.
    private func closeAfterWriting(_ context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        outbound.flush(context, promise: written)
        guard lingersOnClose else {
            written.futureResult.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        lingersOnClose = false
        lingerBytesLeft = Self.maxLingerBytes
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: halfClosed)
        }
        // A transport that cannot end one side (or a write that failed): close at once.
        halfClosed.futureResult.assumeIsolated().whenFailure { _ in
            context.close(promise: nil)
        }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) {
            context.close(promise: nil)
        }
        context.channel.closeFuture.assumeIsolated().whenComplete { _ in timer.cancel() }
        context.read()
    }

    /// Writes the status line and fields, choosing how the body is delimited:
    /// as the endpoint delimited it (Content-Length), not at all (HEAD, 1xx,
    /// 204, 304, or a head that is the whole response), in chunks, or, for an
    /// HTTP/1.0 client, by closing the connection.
    private func startResponse(
        _ head: (status: HTTPResponseStatus, headers: HTTPHeaders), endsNow: Bool, hasTrailers: Bool
    ) {
        pendingHead = nil
        let code = head.status.code
        outbound.writeStatusLine(head.status)
        outbound.writeFields(head.headers)
        let framing: HTTP1Outbound.Framing
        if requestIsHEAD || code < 200 || code == 204 || code == 304 {
            framing = .none
        } else if head.headers.contains(name: "content-length") {
            framing = .raw
        } else if endsNow && !hasTrailers {
            outbound.writeField("content-length", "0")
            framing = .none
        } else if requestVersion.minor >= 1 {
            framing = .chunked
        } else {
            closeAfterResponse = true
            framing = .raw
        }
        if closeAfterResponse {
            outbound.writeField("connection", "close")
        } else if requestVersion.minor == 0 {
            outbound.writeField("connection", "keep-alive")
        }
        outbound.endHead(framing: framing)
    }

    /// Writes the proxy's own answer for `error`; returns the status sent.
    func writeLocalResponse(
        for error: ProxyError, isGRPC: Bool, requestID: String, explainHint: ExplainHint?
    ) -> HTTPResponseStatus {
        if error.closesConnection {
            closeAfterResponse = true
            lingersOnClose = true
        }
        return writeLocalAnswer(
            for: error, isGRPC: isGRPC, requestID: requestID, explainHint: explainHint,
            allocator: context?.channel.allocator ?? ByteBufferAllocator())
    }

    /// The response cannot be completed: the connection closes.
    /// What was written of the response goes out first: the client sees it
    /// cut short (a body shorter than its length, or chunks without the last
    /// one) instead of an empty reply, which would wrongly say nothing was sent.
    /// An HTTP/1.1 connection serves one request at a time: it never holds
    /// more than one request of any cluster, which every share allows.
    func takeClusterShare(_ cluster: Int, maxRequests: Int) -> Bool {
        true
    }

    func releaseClusterShare(_ cluster: Int) {}

    func abortResponse() {
        flushBatched()
        context?.close(promise: nil)
    }

    func exchangeFinished(_ finished: ProxyExchange) {
        if exchange === finished {
            exchange = nil
        }
        // The idle period starts when the response ends.
        idleTimer.touch()
        pendingHead = nil
        if !closeAfterResponse {
            processRequests()
        }
        resumeReads()
    }
}
