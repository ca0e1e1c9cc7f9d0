import NIOCore
import NIOHTTP2

/// A client's HTTP/2 connection, handled at frame level: `HTTP2ConnectionCodec`
/// keeps the connection state (HPACK, stream states, outbound flow control)
/// and this handler keeps a table of streams, each an `HTTP2DownstreamStream` serving
/// one exchange. No channel per stream and no HTTP/1 codec: a request costs
/// a table entry and the frames themselves.
///
/// Flow control toward the client is ours: the connection window is raised
/// at once (`HTTP2FrameOutbox`), and credit for DATA goes back only as the
/// upstream takes the bytes (`HTTP2Stream`).
final class HTTP2DownstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let info: DownstreamConnectionInfo
    let worker: LoopWorker
    let streamWindowSize: Int
    let outbox: HTTP2FrameOutbox
    private var streams: [HTTP2StreamID: HTTP2DownstreamStream] = [:]
    private var listener: ListenerLookup
    private var lastStreamID = HTTP2StreamID.rootStream
    private var isQuiescing = false
    /// Streams that received request bytes during this read, to flush upstream once it completes.
    private var readInto = HTTP2StreamsRead()
    private let idleTimer: IdleTimer

    init(info: DownstreamConnectionInfo, worker: LoopWorker, streamWindowSize: Int) {
        self.info = info
        self.worker = worker
        self.streamWindowSize = streamWindowSize
        listener = ListenerLookup(name: info.listenerName)
        outbox = HTTP2FrameOutbox(batch: worker.flushBatch)
        idleTimer = IdleTimer(timeout: info.idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        outbox.attach(context)
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
        outbox.detach()
    }

    // MARK: Frames in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = streams[frame.streamID] {
                stream.receivedTrailers(headers.headers)
            } else {
                openStream(frame.streamID, headers)
            }
        case .data(let data):
            let length = HTTP2ReceiveWindow.flowControlledLength(data)
            if let stream = streams[frame.streamID] {
                stream.receivedData(data, flowControlledLength: length)
                readInto.note(stream)
            } else {
                // A stream we already finished with: the bytes are dropped, the credit is not.
                outbox.returnConnectionCredit(length)
            }
        case .rstStream:
            streams.removeValue(forKey: frame.streamID)?.closed()
            idleTimer.touch()
        default:
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
        streams[id] = stream
        guard let (head, contentLength) = HTTP2HeaderMapping.requestHead(headers.headers) else {
            streams.removeValue(forKey: id)
            outbox.reset(id, .protocolError)
            return
        }
        stream.start(
            head: head, contentLength: contentLength, listener: listener.current(in: worker),
            endStream: headers.endStream)
        readInto.note(stream)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readInto.readComplete()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // One event per stream, others now and then: comparing metatypes
        // first rules the others out without the cost of a dynamic cast.
        let eventType = type(of: event)
        if eventType == StreamClosedEvent.self, let closed = event as? StreamClosedEvent {
            streams.removeValue(forKey: closed.streamID)?.closed()
            idleTimer.touch()
            closeIfDrained()
            return
        }
        if eventType == ChannelShouldQuiesceEvent.self {
            quiesce()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams.values {
                stream.connectionBecameWritable()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer.stop()
        let open = streams
        streams.removeAll()
        for stream in open.values {
            stream.closed()
        }
        context.fireChannelInactive()
    }

    /// HTTP/2 errors the codec answers and handles itself; what reaches
    /// here is the transport's (a TLS alert, a reset socket), and ends the connection.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
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
