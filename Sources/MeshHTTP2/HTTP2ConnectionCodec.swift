import NIOCore
import NIOHPACK
import NIOHTTP2

/// The SETTINGS one side of a connection sends, and the limits it holds the peer to.
package struct HTTP2LocalSettings {
    /// Streams the peer may have open at once (servers); nil sends no limit.
    package var maxConcurrentStreams: Int?
    /// Each stream's receive window.
    package var initialWindowSize: Int
    /// The largest decoded header list accepted; beyond it, the connection fails.
    package var maxHeaderListSize: Int
    /// Clients send 0: SwiftMesh never accepts server push.
    package var disablePush = false
    /// A header block, and any other frame but DATA, must arrive whole
    /// within this long of its first byte (the listener's
    /// `requestHeadersTimeout`): a client trickling one cannot hold the
    /// connection, whose other frames must wait for the block's end. Past
    /// it, GOAWAY and the connection closes. Nil: no limit (endpoints).
    package var headerBlockTimeout: TimeAmount?

    package init(
        maxConcurrentStreams: Int?, initialWindowSize: Int, maxHeaderListSize: Int, disablePush: Bool = false,
        headerBlockTimeout: TimeAmount? = nil
    ) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.initialWindowSize = initialWindowSize
        self.maxHeaderListSize = maxHeaderListSize
        self.disablePush = disablePush
        self.headerBlockTimeout = headerBlockTimeout
    }
}

/// SwiftMesh's own HTTP/2 connection layer (RFC 9113), for both sides of
/// the proxy: bytes in, `HTTP2Frame`s to the connection handler behind it;
/// `HTTP2Frame`s from that handler, bytes out. It replaces NIOHTTP2's
/// handler on the data path because a proxied request crosses two HTTP/2
/// connections and pays their framing four times: NIOHTTP2's general
/// state machine, validation and HPACK encoder were about half of the
/// proxy's CPU per h2c request (see docs/benchmarks.md).
///
/// What it keeps per connection: the peer's SETTINGS, both flow-control
/// windows per stream and for the connection, which streams are open and
/// which side ended them, and the HPACK decoder's state. What it leaves to
/// the handler: stream semantics (`HTTP2HeaderMapping` validates fields,
/// `HTTP2Stream` checks body lengths and returns receive credit).
///
/// It answers SETTINGS and PING itself, holds DATA that the peer's window
/// cannot take yet (in order, with any trailers behind it) and sends it as
/// WINDOW_UPDATEs arrive. A stream closes when both sides ended it or
/// either reset it; the handler hears of a close it did not see as a
/// frame through `StreamClosedEvent`, as with NIOHTTP2. A protocol
/// violation of the whole connection is answered with GOAWAY, carrying the
/// rule the peer broke as its debug data, and the connection closes; of one
/// stream, with RST_STREAM. `HTTP2FloodGuard` bounds the cheap abuses.
///
/// Frames written between two flushes are encoded into one buffer, so a
/// batch of responses leaves in one write; DATA payloads above
/// `inlineDataLimit` are passed on as they are instead of copied.
///
/// Reading is in `HTTP2ConnectionCodec+Reading.swift`, writing and flow
/// control toward the peer in `HTTP2ConnectionCodec+Writing.swift`.
package final class HTTP2ConnectionCodec: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = HTTP2Frame
    package typealias OutboundIn = HTTP2Frame
    package typealias OutboundOut = ByteBuffer

    package enum Role {
        case server
        case client
    }

    /// DATA payloads up to this size are copied into the frame buffer; larger ones are written as they are.
    package static let inlineDataLimit = 4096
    /// A header block may span this many CONTINUATION frames at most.
    package static let maxContinuationFrames = 64
    /// Frames the codec sends on its own (acknowledgements, resets) that may
    /// wait unsent while the peer does not read.
    package static let maxUnreadControlFrames = 1000

    package struct StreamState {
        package var sendWindow: Int
        package var receiveWindow: Int
        /// The handler ended its side (the end may still wait in `blocked`).
        package var localEnded = false
        package var remoteEnded = false
        /// What waits for the peer's window, in order; empty for nearly every stream.
        package var blocked = CircularBuffer<BlockedWrite>(initialCapacity: 0)
    }

    package enum BlockedWrite {
        case data(ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?)
        case trailers(HPACKHeaders, endStream: Bool, promise: EventLoopPromise<Void>?)
    }

    /// A header block whose CONTINUATION frames are still arriving.
    package struct PartialHeaderBlock {
        package var streamID: HTTP2StreamID
        package var endStream: Bool
        /// The HEADERS frame made the stream depend on itself: once the
        /// block is decoded, the stream is refused (RFC 9113 section 5.3.1).
        package var dependsOnItself: Bool
        package var fragments: ByteBuffer
        package var frames: Int
    }

    package let role: Role
    package let local: HTTP2LocalSettings

    package var streams: [HTTP2StreamID: StreamState] = [:]
    /// What a frame on a stream no longer open means.
    package var closedStreams = HTTP2ClosedStreams()
    /// Streams with writes waiting for window, in the order they blocked.
    package var blockedStreams: [HTTP2StreamID] = []
    /// Streams the handler reset with NO_ERROR (the response complete, the
    /// request need not be) while the end of the response still waited for
    /// window: the reset follows it out instead of discarding it. Kept apart
    /// from `StreamState`, which every frame copies, as it is nearly always empty.
    package var resetWhenSent: Set<HTTP2StreamID> = []
    /// The highest stream the peer opened (servers) or we opened (clients).
    package var lastPeerStreamID = HTTP2StreamID.rootStream
    package var lastLocalStreamID = HTTP2StreamID.rootStream

    package var remoteInitialWindowSize = HTTP2Wire.defaultInitialWindowSize
    package var remoteMaxFrameSize = HTTP2Wire.defaultMaxFrameSize
    package var connectionSendWindow = HTTP2Wire.defaultInitialWindowSize
    package var connectionReceiveWindow = HTTP2Wire.defaultInitialWindowSize

    package var decoder: HPACKDecoder
    package var encoder = HPACKFieldEncoder()
    package var floodGuard = HTTP2FloodGuard()
    /// Hears of every error of the peer's the codec answers: the code, and
    /// whether it ended the connection (GOAWAY) or one stream (RST_STREAM),
    /// for the listener's metrics.
    package var onPeerError: ((HTTP2ErrorCode, _ endedConnection: Bool) -> Void)?

    /// The start of a frame that has not fully arrived, in a buffer of its own.
    package var unread: ByteBuffer?
    package var awaitingPreface: Bool
    package var receivedSettings = false
    package var headerBlock: PartialHeaderBlock?
    /// Connection credit for DATA that reached no stream, returned once the read completes.
    package var droppedDataCredit = 0
    package var failed = false
    private var started = false
    /// When the header block (or frame) in progress started arriving; nil
    /// when none is (see `HTTP2LocalSettings.headerBlockTimeout`).
    private var incompleteSince: NIODeadline?
    private var incompleteCheck: Scheduled<Void>?
    /// Hears when a header block took longer than `headerBlockTimeout`.
    package var onHeaderBlockTimeout: (() -> Void)?

    /// Frames encoded since the last write down the pipeline, and the promises they carry.
    package var out: ByteBuffer?
    package var outPromises: [EventLoopPromise<Void>] = []
    /// Frames the codec itself queued while reading (acknowledgements,
    /// resets, held DATA the peer's credit released): flushed when the read completes.
    package var answeredWhileReading = false
    package var unreadControlFrames = 0

    package init(role: Role, settings: HTTP2LocalSettings) {
        self.role = role
        local = settings
        awaitingPreface = role == .server
        decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        decoder.maxHeaderListSize = settings.maxHeaderListSize
    }

    // MARK: Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            start(context)
        }
    }

    package func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    /// The client's preface, then our SETTINGS (RFC 9113 section 3.4).
    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        var buffer = outBuffer(context)
        if role == .client {
            buffer.writeBytes(HTTP2Wire.clientPreface)
        }
        var settings: [(UInt16, Int)] = [
            (HTTP2Wire.Setting.initialWindowSize, local.initialWindowSize),
            (HTTP2Wire.Setting.maxHeaderListSize, local.maxHeaderListSize),
        ]
        if let max = local.maxConcurrentStreams {
            settings.append((HTTP2Wire.Setting.maxConcurrentStreams, max))
        }
        if local.disablePush {
            settings.append((HTTP2Wire.Setting.enablePush, 0))
        }
        buffer.writeHTTP2FrameHeader(
            length: settings.count * 6, type: HTTP2Wire.FrameType.settings, flags: 0, streamID: .rootStream)
        for (identifier, value) in settings {
            buffer.writeInteger(identifier)
            buffer.writeInteger(UInt32(value))
        }
        out = buffer
        flush(context: context)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        failPendingWrites()
        context.fireChannelInactive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        failPendingWrites()
        incompleteCheck?.cancel()
        incompleteCheck = nil
    }

    private func failPendingWrites() {
        for promise in outPromises {
            promise.fail(ChannelError.ioOnClosedChannel)
        }
        outPromises.removeAll()
        out = nil
        for id in blockedStreams {
            streams[id].map(Self.failBlocked)
        }
        blockedStreams.removeAll()
        resetWhenSent.removeAll()
    }

    // MARK: Entry points

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var buffer = unwrapInboundIn(data)
        if var earlier = unread {
            unread = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        do {
            try readFrames(from: &buffer, context)
        } catch {
            fail(error, context)
            return
        }
        if buffer.readableBytes > 0 {
            // Copied out, at most one frame: kept as a slice, the rest of
            // the read's storage would stay alive and grow with each append.
            var rest = context.channel.allocator.buffer(capacity: buffer.readableBytes)
            rest.writeBuffer(&buffer)
            unread = rest
        }
        if local.headerBlockTimeout != nil {
            watchIncompleteHeaders(context)
        }
    }

    // MARK: Header block timeout

    /// Whether the peer is in the middle of something only a slow or
    /// hostile peer leaves half-sent: the preface, a header block awaiting
    /// CONTINUATION, or a frame other than DATA (whose payload may take
    /// long on a slow link; a silent stream is the listener's `streamIdleTimeout`).
    private var isMidHeaders: Bool {
        if awaitingPreface || headerBlock != nil { return true }
        guard let unread else { return false }
        let typeOffset = 3
        guard let type = unread.getInteger(at: unread.readerIndex + typeOffset, as: UInt8.self) else { return true }
        return type != HTTP2Wire.FrameType.data
    }

    private func watchIncompleteHeaders(_ context: ChannelHandlerContext) {
        guard isMidHeaders else {
            incompleteSince = nil
            return
        }
        guard incompleteSince == nil else { return }
        incompleteSince = context.eventLoop.now
        if incompleteCheck == nil {
            scheduleIncompleteCheck(context)
        }
    }

    private func scheduleIncompleteCheck(_ context: ChannelHandlerContext) {
        guard let since = incompleteSince, let timeout = local.headerBlockTimeout else { return }
        incompleteCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: since + timeout) { [self] in
            incompleteCheck = nil
            guard let since = incompleteSince, !failed else { return }
            guard context.channel.isWritable else {
                // The connection handler reads nothing while the client leaves
                // its answers unread: that time is not the client's to account for.
                incompleteSince = context.eventLoop.now
                scheduleIncompleteCheck(context)
                return
            }
            if context.eventLoop.now >= since + timeout {
                onHeaderBlockTimeout?()
                close(goingAway: .noError, "request_headers_timeout: a header block did not arrive whole within the listener's limits.requestHeadersTimeout", context)
            } else {
                // A later block: the check waits for its own deadline.
                scheduleIncompleteCheck(context)
            }
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if droppedDataCredit > 0 {
            writeWindowUpdate(.rootStream, droppedDataCredit, context)
            droppedDataCredit = 0
            answeredWhileReading = true
        }
        if answeredWhileReading {
            answeredWhileReading = false
            flush(context: context)
        }
        context.fireChannelReadComplete()
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        writeFrame(unwrapOutboundIn(data), promise: promise, context)
    }

    package func flush(context: ChannelHandlerContext) {
        writeOut(context)
        context.flush()
    }

    // MARK: Streams

    /// A stream neither side has opened yet (RFC 9113 section 5.1, "idle").
    package func isIdle(_ id: HTTP2StreamID) -> Bool {
        switch role {
        case .server: !id.isClientInitiated || id > lastPeerStreamID
        case .client: !id.isClientInitiated || id > lastLocalStreamID
        }
    }

    /// Closes the stream once both sides ended it and nothing of ours waits for window.
    package func closeIfEnded(_ id: HTTP2StreamID, _ context: ChannelHandlerContext) {
        guard let index = streams.index(forKey: id) else { return }
        let state = streams.values[index]
        guard state.localEnded, state.remoteEnded, state.blocked.isEmpty else { return }
        streams.remove(at: index)
        closedStreams.peerClosed(id, .endStream)
        context.fireUserInboundEventTriggered(StreamClosedEvent(streamID: id, reason: nil))
    }

    package static func failBlocked(_ state: StreamState) {
        for write in state.blocked {
            switch write {
            case .data(_, _, let promise), .trailers(_, _, let promise):
                promise?.fail(ChannelError.ioOnClosedChannel)
            }
        }
    }

    // MARK: Buffers

    /// The buffer frames are encoded into until the next write down the pipeline.
    package func outBuffer(_ context: ChannelHandlerContext) -> ByteBuffer {
        if let buffer = out {
            out = nil
            return buffer
        }
        return context.channel.allocator.buffer(capacity: 2048)
    }

    /// Passes the encoded frames down the pipeline, with every promise they carry.
    package func writeOut(_ context: ChannelHandlerContext) {
        guard let buffer = out, buffer.readableBytes > 0 else { return }
        out = nil
        let promise: EventLoopPromise<Void>?
        switch outPromises.count {
        case 0:
            promise = nil
        case 1:
            promise = outPromises[0]
        default:
            let all = outPromises
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for each in all {
                    each.completeWith(result)
                }
            }
            promise = combined
        }
        outPromises.removeAll(keepingCapacity: true)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    // MARK: Connection errors

    /// GOAWAY with the error, then the connection closes (RFC 9113 section
    /// 5.4.1) at once: a peer that does not read must not keep it open.
    package func fail(_ error: HTTP2ConnectionError, _ context: ChannelHandlerContext) {
        guard !failed else { return }
        onPeerError?(error.code, true)
        close(goingAway: error.code, error.reason, context)
    }

    /// GOAWAY with `code`, `reason` as its debug data (for the peer's
    /// logs), then the connection closes.
    private func close(goingAway code: HTTP2ErrorCode, _ reason: String, _ context: ChannelHandlerContext) {
        guard !failed else { return }
        failed = true
        let reason = Array(reason.utf8.prefix(256))
        var buffer = outBuffer(context)
        buffer.writeHTTP2FrameHeader(
            length: 8 + reason.count, type: HTTP2Wire.FrameType.goAway, flags: 0, streamID: .rootStream)
        buffer.writeInteger(UInt32(Int32(lastPeerStreamID)))
        buffer.writeInteger(UInt32(code.networkCode))
        buffer.writeBytes(reason)
        out = buffer
        flush(context: context)
        context.close(promise: nil)
    }
}
