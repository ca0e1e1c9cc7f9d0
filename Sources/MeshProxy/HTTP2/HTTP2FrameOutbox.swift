import NIOCore
import NIOHTTP2

/// The frames one HTTP/2 connection handler sends. The most recent frame is
/// held back until the next one or the batched flush, so that ending a stream
/// right after its last HEADERS or DATA sets END_STREAM on that frame instead
/// of costing an empty DATA frame. Holding only the latest frame keeps every
/// frame in the order it was written, which new streams' HEADERS require.
final class HTTP2FrameOutbox: BatchedFlushTarget {
    private var context: ChannelHandlerContext?
    private let batch: FlushBatch
    private var held: HTTP2Frame?
    private var heldPromise: EventLoopPromise<Void>?
    private var flushScheduled = false

    init(context: ChannelHandlerContext, batch: FlushBatch) {
        self.context = context
        self.batch = batch
    }

    func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>? = nil) {
        releaseHeld()
        held = frame
        heldPromise = promise
        scheduleFlush()
    }

    /// Sets END_STREAM on `streamID`'s frame if it is the one held; false
    /// when the caller must send a frame of its own to end the stream.
    func endHeldFrame(of streamID: HTTP2StreamID) -> Bool {
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

    func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        batch.schedule(self)
    }

    /// Writes and flushes everything now (before closing, for example).
    func flushNow() {
        releaseHeld()
        context?.flush()
    }

    func flushBatched() {
        flushScheduled = false
        flushNow()
    }

    /// The connection's handler left the pipeline: nothing more can be sent.
    func detach() {
        held = nil
        heldPromise?.fail(ChannelError.ioOnClosedChannel)
        heldPromise = nil
        context = nil
    }

    private func releaseHeld() {
        guard let frame = held else { return }
        let promise = heldPromise
        held = nil
        heldPromise = nil
        if let context {
            context.write(NIOAny(frame), promise: promise)
        } else {
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
