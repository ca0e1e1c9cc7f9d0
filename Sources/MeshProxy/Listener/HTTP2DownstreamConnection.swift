import MeshHTTP2
import MeshLoopIO
import NIOCore
import NIOHTTP2

/// A client's HTTP/2 connection, handled at frame level: `HTTP2ConnectionCodec`
/// keeps the connection state (HPACK, stream states, outbound flow control)
/// and this handler keeps an `HTTP2StreamTable` of streams, each an
/// `HTTP2DownstreamStream` serving one exchange. No channel per stream and no HTTP/1 codec: a request costs
/// a table entry and the frames themselves.
///
/// Flow control toward the client is ours: the connection window is the
/// listener's buffer limit, and credit for DATA goes back only as the
/// upstream takes the bytes (`HTTP2Stream`).
///
/// What one client can make the connection hold is bounded
/// (`ListenerLimits`): streams by the codec's `maxConcurrentStreams`;
/// response bytes the client has not read by the outbox's buffer limit,
/// past which every stream stops reading from its endpoint; answers of any
/// kind by not reading the client's requests while the socket does not
/// drain; a silent stream by `streamIdleTimeout`; and each cluster's
/// capacity by `maxShareOfClusterRequests`.
final class HTTP2DownstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let info: DownstreamConnectionInfo
    let worker: LoopWorker
    let streamWindowSize: Int
    let outbox: HTTP2FrameOutbox
    private let streams: HTTP2StreamTable
    private var listener: ListenerLookup
    private var lastStreamID = HTTP2StreamID.rootStream
    private var isQuiescing = false
    private let idleTimer: IdleTimer
    private var context: ChannelHandlerContext?
    /// A read was held back while the socket would not take our writes.
    private var readPending = false
    /// Ends streams silent for the listener's `streamIdleTimeout`: one timer for all of them.
    private var streamIdleCheck: Scheduled<Void>?
    /// Requests this connection holds in flight, by cluster label, for `maxShareOfClusterRequests`.
    private var clusterShares: [Int: Int] = [:]

    init(info: DownstreamConnectionInfo, worker: LoopWorker) {
        self.info = info
        self.worker = worker
        streamWindowSize = info.limits.http2StreamWindow
        listener = ListenerLookup(name: info.listenerName)
        outbox = HTTP2FrameOutbox(
            batch: worker.flushBatch, connectionWindowSize: info.limits.http2ConnectionWindow,
            bufferLimitBytes: info.limits.bufferLimitBytes)
        idleTimer = IdleTimer(timeout: info.idleTimeout)
        streams = HTTP2StreamTable(outbox: outbox)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outbox.attach(context)
        outbox.onBufferLimit = { [weak self] reached in
            guard let self else { return }
            if reached {
                worker.stats.limitReached(listener: info.listenerLabel, .connectionBuffer)
            } else {
                streamsMayWrite()
            }
        }
        // No stream open for the listener's idleTimeout: GOAWAY, then close.
        // Only streams count: PINGs and SETTINGS do not keep a connection.
        idleTimer.start(on: context.eventLoop) { [weak self] in
            self?.streams.isEmpty ?? false
        } close: { [weak self] in
            self?.quiesce()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.stop()
        streamIdleCheck?.cancel()
        streamIdleCheck = nil
        outbox.detach()
        self.context = nil
    }

    // MARK: Frames in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch streams.receive(frame) {
        case .newStream(let headers):
            openStream(frame.streamID, headers)
        case .streamReset:
            streamLeft()
        case .delivered, .connectionFrame:
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY and GOAWAY are the codec's business.
            break
        }
    }

    private func openStream(_ id: HTTP2StreamID, _ headers: HTTP2Frame.FramePayload.Headers) {
        lastStreamID = max(lastStreamID, id)
        guard !isQuiescing else {
            outbox.reset(id, .refusedStream)
            return
        }
        let stream = HTTP2DownstreamStream(id: id, owner: self, windowSize: streamWindowSize)
        streams.insert(stream)
        watchStreamIdleness()
        guard let (head, contentLength) = HTTP2HeaderMapping.requestHead(headers.headers) else {
            streams.remove(id)
            outbox.reset(id, .protocolError)
            return
        }
        stream.start(
            head: head, contentLength: contentLength, listener: listener.current(in: worker),
            endStream: headers.endStream)
        streams.noteRead(stream)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        streams.readComplete()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // One event per stream, others now and then: comparing metatypes
        // first rules the others out without the cost of a dynamic cast.
        let eventType = type(of: event)
        if eventType == StreamClosedEvent.self, let closed = event as? StreamClosedEvent {
            if streams.closed(closed.streamID) {
                streamLeft()
            }
            return
        }
        if eventType == ChannelShouldQuiesceEvent.self {
            quiesce()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            streamsMayWrite()
            if readPending {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func streamsMayWrite() {
        streams.connectionBecameWritable()
    }

    /// A stream left the table: the connection's idle time counts from
    /// now, and a drain may be done.
    private func streamLeft() {
        idleTimer.touch()
        closeIfDrained()
    }

    /// Requests are not read while the client does not read what the
    /// connection wrote: whatever the answers are (the endpoint's, or the
    /// proxy's own), they cannot pile up. Credit the client sends (its
    /// WINDOW_UPDATEs) waits too, but only until the socket drains, which
    /// does not depend on it.
    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            // A download's own backpressure is not a limit; answers all made and left unread are.
            if !readPending && !streams.all.contains(where: { ($0 as? HTTP2DownstreamStream)?.isServing ?? false }) {
                worker.stats.limitReached(listener: info.listenerLabel, .unreadAnswers)
            }
            readPending = true
            return
        }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer.stop()
        streams.closeAll()
        context.fireChannelInactive()
    }

    /// HTTP/2 errors the codec answers and handles itself; what reaches
    /// here is the transport's (a TLS alert, a reset socket), and ends the connection.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: Limits

    /// Whether the connection may hold one more request of the cluster whose
    /// label is `cluster` and whose breaker allows `maxRequests`; takes it if so.
    func takeClusterShare(_ cluster: Int, maxRequests: Int) -> Bool {
        let held = clusterShares[cluster, default: 0]
        guard held < info.limits.clusterShare(ofMaxRequests: maxRequests) else {
            worker.stats.limitReached(listener: info.listenerLabel, .clusterShare)
            return false
        }
        clusterShares[cluster] = held + 1
        return true
    }

    func releaseClusterShare(_ cluster: Int) {
        guard let held = clusterShares[cluster] else { return }
        clusterShares[cluster] = held > 1 ? held - 1 : nil
    }

    /// Checks the streams every half `streamIdleTimeout` while any is open,
    /// so a stream ends between one and one and a half timeouts after its
    /// last byte, and activity costs a flag rather than a clock read per frame.
    private func watchStreamIdleness() {
        guard streamIdleCheck == nil, let context else { return }
        streamIdleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(info.limits.streamIdleTimeout.nanoseconds / 2)) {
            [weak self] in
            self?.checkStreamIdleness()
        }
    }

    /// Ends every stream silent for `streamIdleTimeout`. One that ended
    /// that way but stays open (its answer waits for the client's window)
    /// gets another timeout, then a reset.
    private func checkStreamIdleness() {
        streamIdleCheck = nil
        guard let context else { return }
        let now = context.eventLoop.now
        let timeout = info.limits.streamIdleTimeout
        for case let stream as HTTP2DownstreamStream in Array(streams.all) where streams[stream.id] === stream {
            if stream.stream.wasActive {
                stream.stream.wasActive = false
                stream.silentSince = now
            } else if let since = stream.silentSince, since + timeout <= now {
                stream.silentSince = now
                worker.stats.limitReached(listener: info.listenerLabel, .streamIdleTimeout)
                stream.idleTimedOut()
            }
        }
        if !streams.isEmpty {
            watchStreamIdleness()
        }
    }

    // MARK: Drain

    /// GOAWAY with the last stream we accepted; close once those finish.
    private func quiesce() {
        guard !isQuiescing else { return }
        isQuiescing = true
        outbox.send(HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil)
        ))
        outbox.flushNow()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard isQuiescing, streams.isEmpty else { return }
        outbox.closeAfterFlush()
    }
}
