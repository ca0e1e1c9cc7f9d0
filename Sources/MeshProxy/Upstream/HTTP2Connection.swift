import NIOCore
import NIOHTTP2

/// One multiplexed HTTP/2 connection to an endpoint, handled at frame level:
/// NIOHTTP2 keeps the connection state, this handler allocates stream IDs,
/// keeps a table of `HTTP2UpstreamStream`s and routes frames to them. It also
/// learns the peer's SETTINGS_MAX_CONCURRENT_STREAMS and whether it is going away.
final class HTTP2Connection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// What RFC 9113 lets us assume before the peer's SETTINGS arrive is
    /// "unlimited"; 100 is the value peers advertise most, so start there.
    static let assumedMaxConcurrentStreams = 100
    /// Room for several streams' windows (`UpstreamHTTP2Settings.streamWindow` each).
    static let connectionWindowSize = 16 << 20
    /// Client stream IDs are odd and below 2^31.
    private static let lastUsableStreamID = HTTP2StreamID(Int32.max - 1)

    private unowned let pool: HTTP2ConnectionPool
    private let flushBatch: FlushBatch
    private(set) var outbox: HTTP2FrameOutbox?
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2UpstreamStream] = [:]
    private var nextStreamID = HTTP2StreamID(1)
    private var connectionWindow = HTTP2ReceiveWindow(size: connectionWindowSize)
    private(set) var maxConcurrentStreams = HTTP2Connection.assumedMaxConcurrentStreams
    /// The peer sent GOAWAY, or the endpoint left its cluster: no new streams.
    private(set) var isClosing = false
    private(set) var isClosed = false
    private var isClosingChannel = false
    /// Streams that received response bytes during this read, to flush downstream once it completes.
    private var readInto: [HTTP2UpstreamStream] = []

    init(pool: HTTP2ConnectionPool, flushBatch: FlushBatch) {
        self.pool = pool
        self.flushBatch = flushBatch
    }

    var activeStreams: Int { streams.count }
    var hasCapacity: Bool { !isClosing && !isClosed && streams.count < maxConcurrentStreams }
    var isWritable: Bool { context?.channel.isWritable ?? false }
    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outbox = HTTP2FrameOutbox(context: context, batch: flushBatch)
        send(HTTP2Frame(
            streamID: .rootStream,
            payload: .windowUpdate(
                windowSizeIncrement: Self.connectionWindowSize - HTTP2DownstreamConnection.initialConnectionWindow)
        ))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        outbox?.detach()
        outbox = nil
        self.context = nil
    }

    /// Opens a stream for `exchange` and attaches it at once; its HEADERS go
    /// out with the exchange's first write.
    func openStream(for exchange: ProxyExchange) {
        let id = nextStreamID
        nextStreamID = HTTP2StreamID(Int32(Int(id) + 2))
        if nextStreamID > Self.lastUsableStreamID {
            // Out of stream IDs: this connection serves what it has, the pool opens another.
            closeGracefully()
        }
        let stream = HTTP2UpstreamStream(id: id, owner: self, exchange: exchange)
        streams[id] = stream
        exchange.upstreamAttached(stream)
    }

    /// A stream that never sent anything (or was reset by us) leaves the table.
    func forget(_ stream: HTTP2UpstreamStream) {
        guard streams.removeValue(forKey: stream.id) != nil else { return }
        streamRemoved()
    }

    /// No new streams; close once the running ones finish.
    func closeGracefully() {
        isClosing = true
        closeIfIdle()
    }

    // MARK: Frames in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = streams[frame.streamID] {
                stream.receivedHeaders(headers)
                noteRead(stream)
            }
        case .data(let data):
            let length = HTTP2ReceiveWindow.flowControlledLength(data)
            if let stream = streams[frame.streamID] {
                stream.receivedData(data, flowControlledLength: length)
                noteRead(stream)
            } else {
                returnConnectionCredit(length)
            }
        case .rstStream(let code):
            if let stream = streams.removeValue(forKey: frame.streamID) {
                if code == .refusedStream {
                    stream.refused()
                } else {
                    stream.closed()
                }
                streamRemoved()
            }
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                maxConcurrentStreams = setting.value
            }
            pool.capacityFreed()
        case .goAway(let lastStreamID, _, _):
            isClosing = true
            // Streams above lastStreamID were never processed by the endpoint.
            for (id, stream) in streams where id > lastStreamID {
                streams.removeValue(forKey: id)
                stream.refused()
            }
            closeIfIdle()
        default:
            break
        }
    }

    private func noteRead(_ stream: HTTP2UpstreamStream) {
        if readInto.last !== stream {
            readInto.append(stream)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for stream in readInto {
            stream.flushDownstream()
        }
        readInto.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // NIOHTTP2 sends several events per stream: comparing the metatype
        // first rules the others out without the cost of a dynamic cast.
        guard type(of: event) == StreamClosedEvent.self, let closed = event as? StreamClosedEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if let stream = streams.removeValue(forKey: closed.streamID) {
            stream.closed()
            streamRemoved()
        }
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
        isClosed = true
        let open = streams
        streams.removeAll()
        for stream in open.values {
            stream.closed()
        }
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Stream errors reset only their stream (NIOHTTP2 sent RST_STREAM and
        // reports the closure); anything else ends the connection.
        if !(error is NIOHTTP2Errors.StreamError) {
            context.close(promise: nil)
        }
    }

    private func streamRemoved() {
        closeIfIdle()
        pool.capacityFreed()
    }

    private func closeIfIdle() {
        guard isClosing, streams.isEmpty, !isClosingChannel, let context else { return }
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

    func returnConnectionCredit(_ bytes: Int) {
        if let increment = connectionWindow.consumed(bytes) {
            send(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }
}
