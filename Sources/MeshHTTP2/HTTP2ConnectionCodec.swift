import NIOCore
import NIOHTTP2

/// SwiftMesh's own HTTP/2 connection layer (RFC 9113), for both sides of
/// the proxy: bytes in, `HTTP2Frame`s to the connection handler behind it;
/// `HTTP2Frame`s from that handler, bytes out. It replaces NIOHTTP2's
/// handler on the data path because a proxied request crosses two HTTP/2
/// connections and pays their framing four times: NIOHTTP2's general
/// state machine, validation and HPACK encoder were about half of the
/// proxy's CPU per h2c request (see docs/benchmarks.md).
///
/// The protocol is `HTTP2ConnectionState`, a value this handler feeds one
/// frame at a time and whose events it performs before the next: the
/// handler behind sees each frame, and may answer it, before the codec
/// reads on. What is the handler's alone: the channel, the clock (the
/// header block timeout) and when to flush.
///
/// Frames written between two flushes are encoded into one buffer, so a
/// batch of responses leaves in one write; DATA payloads above
/// `HTTP2ConnectionState.inlineDataLimit` are passed on as they are instead of copied.
package final class HTTP2ConnectionCodec: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = HTTP2Frame
    package typealias OutboundIn = HTTP2Frame
    package typealias OutboundOut = ByteBuffer

    package private(set) var state: HTTP2ConnectionState
    /// Hears of every error of the peer's the codec answers: the code, and
    /// whether it ended the connection (GOAWAY) or one stream (RST_STREAM),
    /// for the listener's metrics.
    package var onPeerError: ((HTTP2ErrorCode, _ endedConnection: Bool) -> Void)?
    /// Hears when a header block took longer than `headerBlockTimeout`.
    package var onHeaderBlockTimeout: (() -> Void)?
    /// Events are being performed: one the handler behind provokes while
    /// it handles another waits its turn instead of overtaking it.
    private var performing = false
    /// When the header block (or frame) in progress started arriving; nil
    /// when none is (see `HTTP2LocalSettings.headerBlockTimeout`).
    private var incompleteSince: NIODeadline?
    private var incompleteCheck: Scheduled<Void>?

    package init(role: HTTP2ConnectionState.Role, settings: HTTP2LocalSettings) {
        state = HTTP2ConnectionState(role: role, settings: settings)
    }

    // MARK: Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, state.start() {
            flush(context: context)
        }
    }

    package func channelActive(context: ChannelHandlerContext) {
        if state.start() {
            flush(context: context)
        }
        context.fireChannelActive()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        state.connectionClosed()
        perform(context)
        context.fireChannelInactive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        state.connectionClosed()
        perform(context)
        incompleteCheck?.cancel()
        incompleteCheck = nil
    }

    // MARK: Entry points

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !state.failed else { return }
        var buffer = unwrapInboundIn(data)
        state.peerIsReading = context.channel.isWritable
        state.received(&buffer)
        reading: while true {
            switch state.readFrame(from: &buffer) {
            case .frame(let frame):
                // Events the handler provokes while it handles the frame
                // (a stream's close behind it) wait until it is done.
                let wasPerforming = performing
                performing = true
                context.fireChannelRead(wrapInboundOut(frame))
                performing = wasPerforming
                perform(context)
            case .frameRead:
                perform(context)
            case .needMoreBytes:
                break reading
            case .connectionFailed:
                perform(context)
                break reading
            }
        }
        state.keepUnread(&buffer)
        if state.local.headerBlockTimeout != nil {
            watchIncompleteHeaders(context)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if state.readComplete() {
            flush(context: context)
        }
        context.fireChannelReadComplete()
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        state.writeFrame(unwrapOutboundIn(data), promise: promise)
        perform(context)
    }

    package func flush(context: ChannelHandlerContext) {
        writeOut(context)
        context.flush()
    }

    // MARK: Performing the state's events

    private func perform(_ context: ChannelHandlerContext) {
        guard !performing, !state.events.isEmpty else { return }
        performing = true
        defer { performing = false }
        while let event = state.nextEvent() {
            switch event {
            case .frame(let frame):
                context.fireChannelRead(wrapInboundOut(frame))
            case .streamClosed(let id, let reason):
                context.fireUserInboundEventTriggered(StreamClosedEvent(streamID: id, reason: reason))
            case .peerError(let code, let endedConnection):
                onPeerError?(code, endedConnection)
            case .completeWrite(let promise, nil):
                promise.succeed()
            case .completeWrite(let promise, let failure?):
                promise.fail(failure)
            case .close:
                flush(context: context)
                context.close(promise: nil)
            }
        }
    }

    /// Passes the encoded frames down the pipeline, with every promise they carry.
    private func writeOut(_ context: ChannelHandlerContext) {
        while let write = state.nextWrite(combining: { promises in
            switch promises.count {
            case 0:
                return nil
            case 1:
                return promises[0]
            default:
                let combined = context.eventLoop.makePromise(of: Void.self)
                combined.futureResult.whenComplete { result in
                    for each in promises {
                        each.completeWith(result)
                    }
                }
                return combined
            }
        }) {
            context.write(wrapOutboundOut(write.bytes), promise: write.promise)
        }
    }

    // MARK: Header block timeout

    private func watchIncompleteHeaders(_ context: ChannelHandlerContext) {
        guard state.isMidHeaders else {
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
        guard let since = incompleteSince, let timeout = state.local.headerBlockTimeout else { return }
        incompleteCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: since + timeout) { [self] in
            incompleteCheck = nil
            guard let since = incompleteSince, !state.failed else { return }
            guard context.channel.isWritable else {
                // The connection handler reads nothing while the client leaves
                // its answers unread: that time is not the client's to account for.
                incompleteSince = context.eventLoop.now
                scheduleIncompleteCheck(context)
                return
            }
            if context.eventLoop.now >= since + timeout {
                onHeaderBlockTimeout?()
                state.headerBlockTimedOut()
                perform(context)
            } else {
                // A later block: the check waits for its own deadline.
                scheduleIncompleteCheck(context)
            }
        }
    }
}
