import NIOCore
import NIOHTTP2

/// A client's HTTP/2 connection, handled at frame level: NIOHTTP2 keeps the
/// connection state (HPACK, stream states, outbound flow control) and this
/// handler keeps a table of streams, each an `HTTP2DownstreamStream` serving
/// one exchange. No channel per stream and no HTTP/1 codec: a request costs
/// a table entry and the frames themselves.
///
/// Flow control toward the client is ours: the connection window is raised
/// to `connectionWindowSize` at once, and credit for DATA goes back only as
/// the upstream takes the bytes (see `HTTP2ReceiveWindow`).
final class HTTP2DownstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// What the whole connection may have in flight toward us: room for
    /// several streams' windows (`DownstreamPipeline.streamWindow` each).
    static let connectionWindowSize = 16 << 20
    /// RFC 9113 section 6.9.2: every connection starts with this window.
    static let initialConnectionWindow = 65535

    let info: DownstreamConnectionInfo
    let worker: LoopWorker
    let streamWindowSize: Int
    private(set) var outbox: HTTP2FrameOutbox?
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2DownstreamStream] = [:]
    private var connectionWindow = HTTP2ReceiveWindow(size: connectionWindowSize)
    private var listener: ListenerLookup
    private var lastStreamID = HTTP2StreamID.rootStream
    private var isQuiescing = false
    private var isClosingChannel = false
    /// Streams that received request bytes during this read, to flush upstream once it completes.
    private var readInto: [HTTP2DownstreamStream] = []

    init(info: DownstreamConnectionInfo, worker: LoopWorker, streamWindowSize: Int) {
        self.info = info
        self.worker = worker
        self.streamWindowSize = streamWindowSize
        listener = ListenerLookup(name: info.listenerName)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }
    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outbox = HTTP2FrameOutbox(context: context, batch: worker.flushBatch)
        send(HTTP2Frame(
            streamID: .rootStream,
            payload: .windowUpdate(windowSizeIncrement: Self.connectionWindowSize - Self.initialConnectionWindow)
        ))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        outbox?.detach()
        outbox = nil
        self.context = nil
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
                noteRead(stream)
            } else {
                // A stream we already finished with: the bytes are dropped, the credit is not.
                returnConnectionCredit(length)
            }
        case .rstStream:
            streams.removeValue(forKey: frame.streamID)?.closed()
        default:
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY and GOAWAY are NIOHTTP2's business.
            break
        }
    }

    private func openStream(_ id: HTTP2StreamID, _ headers: HTTP2Frame.FramePayload.Headers) {
        lastStreamID = max(lastStreamID, id)
        guard !isQuiescing else {
            reset(id, .refusedStream)
            return
        }
        let stream = HTTP2DownstreamStream(id: id, owner: self, windowSize: streamWindowSize)
        streams[id] = stream
        guard let head = HTTP2HeaderMapping.requestHead(headers.headers) else {
            streams.removeValue(forKey: id)
            reset(id, .protocolError)
            return
        }
        stream.start(head: head, listener: listener.current(in: worker), endStream: headers.endStream)
        noteRead(stream)
    }

    private func noteRead(_ stream: HTTP2DownstreamStream) {
        if readInto.last !== stream {
            readInto.append(stream)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for stream in readInto {
            stream.flushUpstream()
        }
        readInto.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // NIOHTTP2 sends several events per stream: comparing metatypes first
        // rules the others out without the cost of a dynamic cast.
        let eventType = type(of: event)
        if eventType == StreamClosedEvent.self, let closed = event as? StreamClosedEvent {
            streams.removeValue(forKey: closed.streamID)?.closed()
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
        let open = streams
        streams.removeAll()
        for stream in open.values {
            stream.closed()
        }
        context.fireChannelInactive()
    }

    /// NIOHTTP2 already answered the peer (RST_STREAM for a stream error,
    /// GOAWAY for a connection error); after a connection error RFC 9113
    /// section 5.4.1 says the connection closes.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !(error is NIOHTTP2Errors.StreamError) {
            context.close(promise: nil)
        }
    }

    // MARK: Drain

    /// GOAWAY with the last stream we accepted; close once those finish.
    private func quiesce() {
        guard !isQuiescing else { return }
        isQuiescing = true
        send(HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil)
        ))
        outbox?.flushNow()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard isQuiescing, streams.isEmpty, !isClosingChannel, let context else { return }
        // Not now: this may run inside NIOHTTP2's handling of the write that
        // ended the last stream, and that frame must reach the socket first.
        isClosingChannel = true
        context.eventLoop.assumeIsolated().execute { [self] in
            outbox?.flushNow()
            self.context?.close(promise: nil)
        }
    }

    // MARK: Frames out (used by the streams)

    func send(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>? = nil) {
        guard let outbox else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        outbox.write(frame, promise: promise)
    }

    func makePromise() -> EventLoopPromise<Void>? {
        context?.eventLoop.makePromise()
    }

    func reset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode) {
        send(HTTP2Frame(streamID: id, payload: .rstStream(code)))
    }

    func returnConnectionCredit(_ bytes: Int) {
        if let increment = connectionWindow.consumed(bytes) {
            send(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }
}
