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

/// One HTTP/2 connection's state (RFC 9113), as a value that does no I/O:
/// bytes and frames go in, and what the connection must do comes out as
/// `Event`s (frames and stream closes for the handler behind, write
/// promises to complete, the connection to close) and encoded bytes to
/// write. `HTTP2ConnectionCodec` is the channel handler that feeds it and
/// performs what it asks.
///
/// What it keeps: the peer's SETTINGS, both flow-control windows per stream
/// and for the connection, which streams are open and which side ended
/// them, and the HPACK state both ways. What it leaves to the connection's
/// handler: stream semantics (`HTTP2HeaderMapping` validates fields,
/// `HTTP2Stream` checks body lengths and returns receive credit).
///
/// It answers SETTINGS and PING itself, holds DATA that the peer's window
/// cannot take yet (in order, with any trailers behind it) and sends it as
/// WINDOW_UPDATEs arrive. A stream closes when both sides ended it or
/// either reset it; the handler hears of a close it did not see as a frame
/// through `Event.streamClosed`. A protocol violation of the whole
/// connection is answered with GOAWAY, carrying the rule the peer broke as
/// its debug data, and `Event.close`; of one stream, with RST_STREAM.
/// `HTTP2FloodGuard` bounds the cheap abuses.
///
/// Promises are never completed here: completing one runs its callbacks,
/// which may write to this same connection while it is being changed.
/// They come out as `Event.completeWrite` instead.
///
/// Reading is in `+Reading` (streams' frames) and `+ConnectionFrames`,
/// writing and flow control toward the peer in `+Writing`.
package struct HTTP2ConnectionState {
    package enum Role {
        case server
        case client
    }

    /// What the connection's handler must do, in order.
    package enum Event {
        /// A frame for the handler behind the codec.
        case frame(HTTP2Frame)
        /// A stream closed without a frame the handler saw saying so: both
        /// sides ended it, or we reset it (`reason`).
        case streamClosed(HTTP2StreamID, reason: HTTP2ErrorCode?)
        /// An error of the peer's was answered: GOAWAY (`endedConnection`) or RST_STREAM.
        case peerError(HTTP2ErrorCode, endedConnection: Bool)
        /// A write's promise: succeeded, or failed with `failure`.
        case completeWrite(EventLoopPromise<Void>, failure: (any Error)?)
        /// GOAWAY is encoded: write it, then close the connection.
        case close
    }

    /// How far one `readFrame` got.
    package enum ReadProgress {
        /// One frame was read, and this is what the handler behind sees of
        /// it; events may be queued behind it. There may be more frames.
        case frame(HTTP2Frame)
        /// One frame was read that the handler sees nothing of, or only
        /// through queued events. There may be more frames.
        case frameRead
        /// What is left is not a whole frame.
        case needMoreBytes
        /// The connection failed; GOAWAY and `Event.close` are queued.
        case connectionFailed
    }

    /// DATA payloads up to this size are copied into the frame buffer; larger ones are written as they are.
    package static let inlineDataLimit = 4096
    /// A header block may span this many CONTINUATION frames at most.
    package static let maxContinuationFrames = 64
    /// Frames the connection sends on its own (acknowledgements, resets)
    /// that may wait unsent while the peer does not read.
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

    /// The start of a frame that has not fully arrived, in a buffer of its own.
    package var unread: ByteBuffer?
    package var awaitingPreface: Bool
    package var receivedSettings = false
    package var headerBlock: PartialHeaderBlock?
    /// Connection credit for DATA that reached no stream, returned once the read completes.
    package var droppedDataCredit = 0
    package private(set) var failed = false
    /// The connection is gone: writes fail at once instead of waiting for window.
    package private(set) var isClosed = false
    private var started = false
    /// Whether the socket takes our writes (the handler says so before each
    /// read): answers provoked while it does not are counted.
    package var peerIsReading = true
    package var unreadControlFrames = 0

    /// The frame `readFrame` returns, if the frame it read gives one.
    var frameForHandler: HTTP2Frame?
    /// What the handler has yet to do, in order.
    package var events = CircularBuffer<Event>(initialCapacity: 4)
    /// Frames encoded since the handler last took them, and the promises they carry.
    package var out: ByteBuffer?
    package var outPromises: [EventLoopPromise<Void>] = []
    /// Writes cut off before `out` (a large DATA payload is passed on as
    /// it is, after what was encoded before it): taken first.
    package var cutWrites = CircularBuffer<(bytes: ByteBuffer, promises: [EventLoopPromise<Void>])>(initialCapacity: 0)
    /// Frames queued while reading (acknowledgements, resets, held DATA
    /// the peer's credit released): to be flushed when the read completes.
    package var answeredWhileReading = false

    package init(role: Role, settings: HTTP2LocalSettings) {
        self.role = role
        local = settings
        awaitingPreface = role == .server
        decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        decoder.maxHeaderListSize = settings.maxHeaderListSize
    }

    // MARK: Lifecycle

    /// The client's preface, then our SETTINGS (RFC 9113 section 3.4);
    /// false when the connection had already started.
    package mutating func start() -> Bool {
        guard !started else { return false }
        started = true
        var buffer = outBuffer()
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
        return true
    }

    /// The connection is gone: every write still waiting fails.
    package mutating func connectionClosed() {
        isClosed = true
        for promise in outPromises {
            events.append(.completeWrite(promise, failure: ChannelError.ioOnClosedChannel))
        }
        outPromises.removeAll()
        out = nil
        while let cut = cutWrites.popFirst() {
            for promise in cut.promises {
                events.append(.completeWrite(promise, failure: ChannelError.ioOnClosedChannel))
            }
        }
        for id in blockedStreams {
            if let state = streams[id] {
                failBlocked(state)
            }
        }
        blockedStreams.removeAll()
        resetWhenSent.removeAll()
    }

    /// What the read that just completed leaves to send: the connection
    /// credit of DATA that reached no stream. True when frames were queued
    /// while reading and should be flushed now.
    package mutating func readComplete() -> Bool {
        if droppedDataCredit > 0 {
            writeWindowUpdate(.rootStream, droppedDataCredit)
            droppedDataCredit = 0
            answeredWhileReading = true
        }
        defer { answeredWhileReading = false }
        return answeredWhileReading
    }

    /// The next thing the handler must do, if any.
    package mutating func nextEvent() -> Event? {
        events.popFirst()
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
    package mutating func closeIfEnded(_ id: HTTP2StreamID) {
        guard let index = streams.index(forKey: id) else { return }
        let state = streams.values[index]
        guard state.localEnded, state.remoteEnded, state.blocked.isEmpty else { return }
        streams.remove(at: index)
        closedStreams.peerClosed(id, .endStream)
        events.append(.streamClosed(id, reason: nil))
    }

    /// The writes a closed stream held for window fail.
    package mutating func failBlocked(_ state: StreamState) {
        for write in state.blocked {
            switch write {
            case .data(_, _, let promise), .trailers(_, _, let promise):
                if let promise {
                    events.append(.completeWrite(promise, failure: ChannelError.ioOnClosedChannel))
                }
            }
        }
    }

    // MARK: Output

    /// The buffer frames are encoded into until the handler takes them.
    package mutating func outBuffer() -> ByteBuffer {
        if let buffer = out {
            out = nil
            return buffer
        }
        return ByteBufferAllocator().buffer(capacity: 2048)
    }

    /// What is encoded so far is cut off as one write, so that `bytes` can
    /// follow it as they are.
    package mutating func cutWrite(then bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        if let buffer = out, buffer.readableBytes > 0 {
            cutWrites.append((buffer, outPromises))
            outPromises = []
        }
        out = nil
        cutWrites.append((bytes, promise.map { [$0] } ?? []))
    }

    /// The next bytes to write, in order, with one promise for all the
    /// writes they carry (`combine` makes it when there are several).
    package mutating func nextWrite(
        combining combine: ([EventLoopPromise<Void>]) -> EventLoopPromise<Void>?
    ) -> (bytes: ByteBuffer, promise: EventLoopPromise<Void>?)? {
        if let cut = cutWrites.popFirst() {
            return (cut.bytes, combine(cut.promises))
        }
        guard let buffer = out, buffer.readableBytes > 0 else { return nil }
        out = nil
        let promise = combine(outPromises)
        outPromises.removeAll(keepingCapacity: true)
        return (buffer, promise)
    }

    // MARK: Connection errors

    /// Whether the peer is in the middle of something only a slow or
    /// hostile peer leaves half-sent: the preface, a header block awaiting
    /// CONTINUATION, or a frame other than DATA (whose payload may take
    /// long on a slow link; a silent stream is the listener's `streamIdleTimeout`).
    package var isMidHeaders: Bool {
        if awaitingPreface || headerBlock != nil { return true }
        guard let unread else { return false }
        let typeOffset = 3
        guard let type = unread.getInteger(at: unread.readerIndex + typeOffset, as: UInt8.self) else { return true }
        return type != HTTP2Wire.FrameType.data
    }

    /// The header block in progress took longer than `headerBlockTimeout`.
    package mutating func headerBlockTimedOut() {
        close(goingAway: .noError, "request_headers_timeout: a header block did not arrive whole within the listener's limits.requestHeadersTimeout")
    }

    /// GOAWAY with the error, then the connection closes (RFC 9113 section
    /// 5.4.1) at once: a peer that does not read must not keep it open.
    package mutating func fail(_ error: HTTP2ConnectionError) {
        guard !failed else { return }
        events.append(.peerError(error.code, endedConnection: true))
        close(goingAway: error.code, error.reason)
    }

    /// GOAWAY with `code`, `reason` as its debug data (for the peer's
    /// logs), then the connection closes.
    private mutating func close(goingAway code: HTTP2ErrorCode, _ reason: String) {
        guard !failed else { return }
        failed = true
        let reason = Array(reason.utf8.prefix(256))
        var buffer = outBuffer()
        buffer.writeHTTP2FrameHeader(
            length: 8 + reason.count, type: HTTP2Wire.FrameType.goAway, flags: 0, streamID: .rootStream)
        buffer.writeInteger(UInt32(Int32(lastPeerStreamID)))
        buffer.writeInteger(UInt32(code.networkCode))
        buffer.writeBytes(reason)
        out = buffer
        events.append(.close)
    }
}
