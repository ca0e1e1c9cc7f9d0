import MeshLoopIO
import NIOCore
import NIOHTTP2

/// Everything one HTTP/2 connection handler (client side or endpoint side)
/// and its streams send: frames, flushed once per loop iteration; the
/// connection-level credit for received DATA; and the close once the last
/// frames are out.
///
/// The most recent frame is held back until the next one or the batched
/// flush, so that ending a stream right after its last HEADERS or DATA sets
/// END_STREAM on that frame instead of costing an empty DATA frame. Holding
/// only the latest frame keeps every frame in the order it was written, which
/// new streams' HEADERS require.
package final class HTTP2FrameOutbox: BatchedFlushTarget {
    /// What an endpoint's connection may have in flight toward us: room for
    /// several streams' windows. Offered at once, so only streams pace the
    /// endpoint; a client's connection gets its listener's buffer limit instead.
    package static let upstreamConnectionWindow = 16 << 20
    /// RFC 9113 section 6.9.2: every connection starts with this window.
    package static let initialConnectionWindow = 65535

    private var context: ChannelHandlerContext?
    private let batch: FlushBatch
    private var held: HTTP2Frame?
    private var heldPromise: EventLoopPromise<Void>?
    private var flushScheduled = false
    private let connectionWindowSize: Int
    private var connectionWindow: HTTP2ReceiveWindow
    private var isClosing = false

    /// DATA bytes the streams sent that are not written to the socket yet:
    /// waiting for the peer's window in the codec, or in the channel.
    package private(set) var bufferedDataBytes = 0
    /// Past this many `bufferedDataBytes`, no stream of the connection is
    /// writable (each stops reading from its other side) until they fall to
    /// half of it; `Int.max` on an endpoint's connection, which many clients share.
    package let bufferLimitBytes: Int
    /// The connection's streams are held back by `bufferLimitBytes`.
    package private(set) var isOverBufferLimit = false
    /// Hears when `isOverBufferLimit` turns true (to count it) and false (to
    /// tell the streams they may go on).
    package var onBufferLimit: ((_ reached: Bool) -> Void)?

    package init(batch: FlushBatch, connectionWindowSize: Int = HTTP2FrameOutbox.upstreamConnectionWindow,
         bufferLimitBytes: Int = .max) {
        self.batch = batch
        self.connectionWindowSize = connectionWindowSize
        connectionWindow = HTTP2ReceiveWindow(size: connectionWindowSize)
        self.bufferLimitBytes = bufferLimitBytes
    }

    /// The connection handler joined its pipeline: frames can go out, and the
    /// connection window is raised to `connectionWindowSize`.
    package func attach(_ context: ChannelHandlerContext) {
        self.context = context
        if connectionWindowSize > Self.initialConnectionWindow {
            send(HTTP2Frame(
                streamID: .rootStream,
                payload: .windowUpdate(windowSizeIncrement: connectionWindowSize - Self.initialConnectionWindow)
            ))
        }
    }

    /// The connection handler left the pipeline: nothing more can be sent.
    package func detach() {
        held = nil
        heldPromise?.fail(ChannelError.ioOnClosedChannel)
        heldPromise = nil
        context = nil
        onBufferLimit = nil
    }

    package var isWritable: Bool { context?.channel.isWritable ?? false }
    package var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    /// A stream sent `bytes` of DATA.
    package func dataQueued(_ bytes: Int) {
        bufferedDataBytes += bytes
        if !isOverBufferLimit && bufferedDataBytes >= bufferLimitBytes {
            isOverBufferLimit = true
            onBufferLimit?(true)
        }
    }

    /// `bytes` of a stream's DATA reached the socket (or were dropped with
    /// their stream); true when that brought the connection under its limit
    /// again (and `onBufferLimit` told the streams).
    @discardableResult
    package func dataWritten(_ bytes: Int) -> Bool {
        bufferedDataBytes -= bytes
        guard isOverBufferLimit && bufferedDataBytes <= bufferLimitBytes / 2 else { return false }
        isOverBufferLimit = false
        onBufferLimit?(false)
        return true
    }

    /// A promise for a frame's write, nil once the connection is gone.
    package func makePromise() -> EventLoopPromise<Void>? {
        context?.eventLoop.makePromise()
    }

    // MARK: Frames

    package func send(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>? = nil) {
        guard context != nil else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        // The frame is held before the one it replaces is written: writing
        // that one may make its stream's connection send more (a freed
        // stream slot opens the next stream), and what it sends must come
        // after this frame, not be overwritten by it.
        let earlier = held
        let earlierPromise = heldPromise
        held = frame
        heldPromise = promise
        if let earlier {
            write(earlier, promise: earlierPromise)
        }
        scheduleFlush()
    }

    /// Sets END_STREAM on `streamID`'s frame if it is the one held; false
    /// when the caller must send a frame of its own to end the stream.
    package func endHeldFrame(of streamID: HTTP2StreamID) -> Bool {
        guard var frame = held, frame.streamID == streamID else { return false }
        switch frame.payload {
        case .headers(var headers) where !headers.endStream:
            headers.endStream = true
            frame.payload = .headers(headers)
        case .data(var data) where !data.endStream:
            data.endStream = true
            frame.payload = .data(data)
        default:
            return false
        }
        held = frame
        return true
    }

    /// Drops `streamID`'s frame if it is the one held: the stream was refused
    /// before its first frames reached the codec, and opening it now (after a
    /// GOAWAY) would be a connection error.
    package func discardHeldFrame(of streamID: HTTP2StreamID) {
        guard held?.streamID == streamID else { return }
        held = nil
        heldPromise?.fail(ChannelError.ioOnClosedChannel)
        heldPromise = nil
    }

    package func reset(_ streamID: HTTP2StreamID, _ code: HTTP2ErrorCode) {
        send(HTTP2Frame(streamID: streamID, payload: .rstStream(code)))
    }

    /// DATA bytes were consumed: the connection-level window is topped up in
    /// batches (see `HTTP2ReceiveWindow`).
    package func returnConnectionCredit(_ bytes: Int) {
        if let increment = connectionWindow.consumed(bytes) {
            send(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }

    // MARK: Flushing and closing

    package func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        batch.schedule(self)
    }

    /// Writes and flushes everything now (before closing, for example).
    package func flushNow() {
        releaseHeld()
        context?.flush()
    }

    package func flushBatched() {
        flushScheduled = false
        flushNow()
    }

    /// Closes the connection after what was sent so far. Not at once: this
    /// may run inside the codec's handling of the write that ended the last
    /// stream, and that frame must reach the socket first.
    package func closeAfterFlush() {
        guard !isClosing, let context else { return }
        isClosing = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushNow()
            self.context?.close(promise: nil)
        }
    }

    private func releaseHeld() {
        guard let frame = held else { return }
        let promise = heldPromise
        held = nil
        heldPromise = nil
        write(frame, promise: promise)
    }

    private func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        if let context {
            context.write(NIOAny(frame), promise: promise)
        } else {
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
