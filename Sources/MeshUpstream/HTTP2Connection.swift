import MeshHTTP2
import MeshLoopIO
import NIOCore
import NIOHTTP2

/// One multiplexed HTTP/2 connection to an endpoint, handled at frame level:
/// `HTTP2ConnectionCodec` keeps the connection state, this handler allocates stream IDs
/// and keeps an `HTTP2StreamTable` of `HTTP2UpstreamStream`s. It also
/// learns the peer's SETTINGS_MAX_CONCURRENT_STREAMS and whether it is going away.
package final class HTTP2Connection: ChannelDuplexHandler {
    package typealias InboundIn = HTTP2Frame
    package typealias OutboundIn = HTTP2Frame
    package typealias OutboundOut = HTTP2Frame

    /// What RFC 9113 lets us assume before the peer's SETTINGS arrive is
    /// "unlimited"; 100 is the value peers advertise most, so start there.
    package static let assumedMaxConcurrentStreams = 100
    /// Client stream IDs are odd and below 2^31.
    private static let lastUsableStreamID = HTTP2StreamID(Int32.max - 1)

    /// Strong: a connection outlives its pool's place in the cluster when
    /// the endpoint leaves (the pool drains), and tells the pool when it
    /// closes. The cycle with the pool's connection list ends at that close.
    private let pool: HTTP2ConnectionPool
    package let outbox: HTTP2FrameOutbox
    private let streams: HTTP2StreamTable
    private var nextStreamID = HTTP2StreamID(1)
    package private(set) var maxConcurrentStreams = HTTP2Connection.assumedMaxConcurrentStreams
    /// The peer sent GOAWAY, or the endpoint left its cluster: no new streams.
    package private(set) var isClosing = false
    package private(set) var isClosed = false
    private let idleTimer: IdleTimer

    package init(pool: HTTP2ConnectionPool, flushBatch: FlushBatch, idleTimeout: TimeAmount) {
        self.pool = pool
        outbox = HTTP2FrameOutbox(batch: flushBatch)
        streams = HTTP2StreamTable(outbox: outbox)
        idleTimer = IdleTimer(timeout: idleTimeout)
    }

    package var hasCapacity: Bool { acceptsStreams && streams.count < maxConcurrentStreams }
    /// Neither closing (GOAWAY, drain) nor closed: its streams will free up for new requests.
    package var acceptsStreams: Bool { !isClosing && !isClosed }

    package func handlerAdded(context: ChannelHandlerContext) {
        outbox.attach(context)
        // No stream for the cluster's idleTimeout: the connection closes.
        // Only streams count: the endpoint's PINGs do not keep a connection.
        idleTimer.start(on: context.eventLoop) { [weak self] in
            self?.streams.isEmpty ?? false
        } close: { [weak self] in
            self?.closeGracefully()
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.stop()
        outbox.detach()
    }

    /// Opens a stream for `request` and attaches it at once; its HEADERS go
    /// out with the try's first write.
    package func openStream(for request: any UpstreamRequest) {
        let id = nextStreamID
        nextStreamID = HTTP2StreamID(Int32(Int(id) + 2))
        if nextStreamID > Self.lastUsableStreamID {
            // Out of stream IDs: this connection serves what it has, the pool opens another.
            closeGracefully()
        }
        let stream = HTTP2UpstreamStream(id: id, owner: self, request: request)
        streams.insert(stream)
        request.connectionReady(stream)
    }

    /// A stream that never sent anything (or was reset by us) leaves the table.
    package func forget(_ stream: HTTP2UpstreamStream) {
        guard streams.remove(stream.id) != nil else { return }
        streamRemoved()
    }

    /// No new streams; close once the running ones finish.
    package func closeGracefully() {
        isClosing = true
        closeIfIdle()
    }

    // MARK: Frames in

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch streams.receive(frame) {
        case .delivered, .newStream:
            break  // HEADERS for a stream we do not have: one we already let go of
        case .streamReset:
            streamRemoved()
        case .connectionFrame:
            switch frame.payload {
            case .settings(.settings(let settings)):
                for setting in settings where setting.parameter == .maxConcurrentStreams {
                    maxConcurrentStreams = setting.value
                }
                pool.capacityFreed()
            case .goAway(let lastStreamID, _, _):
                isClosing = true
                // Streams above lastStreamID were never processed by the endpoint.
                streams.refuseAll(above: lastStreamID)
                closeIfIdle()
            default:
                break
            }
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        streams.readComplete()
        context.fireChannelReadComplete()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // One event per stream, others now and then: comparing the metatype
        // first rules the others out without the cost of a dynamic cast.
        guard type(of: event) == StreamClosedEvent.self, let closed = event as? StreamClosedEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if streams.closed(closed.streamID) {
            streamRemoved()
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            streams.connectionBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        idleTimer.stop()
        isClosed = true
        streams.closeAll()
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    /// HTTP/2 errors the codec answers and handles itself; what reaches
    /// here is the transport's (a TLS alert, a reset socket), and ends the connection.
    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func streamRemoved() {
        idleTimer.touch()
        closeIfIdle()
        pool.capacityFreed()
    }

    private func closeIfIdle() {
        guard isClosing, streams.isEmpty else { return }
        outbox.closeAfterFlush()
    }
}
