import MeshHTTP1
import MeshLoopIO
import NIOCore
import NIOHTTP1

/// The client's side of the exchange (`ExchangeDownstream`): responses
/// written straight into the connection's outbound buffer, framed once the
/// part after the head says how, and the connection's close after them.
extension HTTP1DownstreamConnection {
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
    func closeAfterWriting(_ context: ChannelHandlerContext) {
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
