import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// The side of the proxy that owns a stream (a client's request stream, or
/// a stream toward an endpoint): what its connection's `HTTP2StreamTable`
/// passes it, and what the stream's flow control and reads let it do next.
package protocol HTTP2StreamOwner: AnyObject {
    /// The flow control and sending both sides share.
    var stream: HTTP2Stream { get }
    /// A header block on the open stream: a client's trailers, an
    /// endpoint's response head or trailers.
    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers)
    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int)
    /// The peer reset the stream with `code`; it has left the table.
    func receivedReset(_ code: HTTP2ErrorCode)
    /// The stream closed without a frame saying so (both sides ended it, we
    /// reset it, or the connection is gone); it has left the table.
    func closed()
    /// The socket drained: the stream may send again if its own queue allows.
    func connectionBecameWritable()
    /// Queued DATA was written and the stream is writable again.
    func streamBecameWritable()
    /// Frames for the stream arrived during the read that just completed:
    /// what they carried may be flushed to the other side.
    func streamReadComplete()
}

/// What a proxied HTTP/2 stream does the same on both sides of the proxy
/// (its owner is the client's request stream or the stream toward an
/// endpoint): flow control both ways and sending DATA and the stream's end.
///
/// Backpressure: credit for received DATA goes back only while the other
/// side of the exchange takes the bytes, and the stream counts as unwritable
/// while the DATA it sent waits in the codec for the peer's window.
///
/// A received message's body must match its `content-length` (RFC 9113
/// section 8.1.1); the streams check it here, where the field was already
/// read, rather than in the codec, which would look it up again in every block.
package final class HTTP2Stream {
    /// Bytes a stream may have queued for its peer before the other side is
    /// paused (less when the connection's whole buffer limit is smaller).
    package static let maxBufferedBytes = 256 * 1024

    package let id: HTTP2StreamID
    package let outbox: HTTP2FrameOutbox
    private var receiveWindow: HTTP2ReceiveWindow
    /// Received bytes whose credit waits until the other side can take more.
    private var withheldCredit = 0
    /// Sent DATA bytes not yet written to the socket.
    private var bufferedBytes = 0
    /// No more DATA will arrive (the peer ended or the stream was reset):
    /// stream-level credit would be wasted.
    package var receivingEnded = false
    /// The stream's own end was sent (or it was reset).
    package var sendingEnded = false
    /// Body bytes the peer declared in `content-length` and has not sent yet;
    /// nil when it declared no length.
    package var declaredBodyBytesLeft: Int?
    /// Bytes moved either way since the connection last checked (a flag,
    /// not a clock read per frame): what `streamIdleTimeout` watches.
    package var wasActive = true

    package init(id: HTTP2StreamID, outbox: HTTP2FrameOutbox, receiveWindowSize: Int) {
        self.id = id
        self.outbox = outbox
        receiveWindow = HTTP2ReceiveWindow(size: receiveWindowSize)
    }

    private var bufferLimit: Int { min(Self.maxBufferedBytes, outbox.bufferLimitBytes) }

    /// Whether the peer can take more bytes now: the socket is, this
    /// stream's queue is under its limit, and so are the connection's queues
    /// together, unless this stream has nothing queued: streams whose
    /// client gives no credit fill the connection's buffer, and a stream
    /// whose client does must not starve beside them. So past the
    /// connection's limit each stream holds at most what it sends at once.
    package var isWritable: Bool {
        outbox.isWritable && bufferedBytes < bufferLimit && (bufferedBytes == 0 || !outbox.isOverBufferLimit)
    }

    // MARK: Receiving

    /// Counts `bytes` of received body against the declared length: false
    /// when the peer sent more than it declared, or ends the stream short of
    /// it. The message is then malformed: its body would be cut or run into
    /// the next message where the other side of the exchange is HTTP/1.1.
    package func bodyMatchesDeclaredLength(received bytes: Int, endStream: Bool) -> Bool {
        guard var left = declaredBodyBytesLeft else { return true }
        left -= bytes
        declaredBodyBytesLeft = left
        return left >= 0 && (!endStream || left == 0)
    }

    /// Received DATA worth `bytes` of flow control: credited now, or later
    /// (`releaseWithheldCredit`) when `withhold` says the other side is full.
    package func received(_ bytes: Int, withhold: Bool) {
        if withhold {
            withheldCredit += bytes
        } else {
            credit(bytes)
        }
    }

    /// The other side can take more: the withheld credit goes back.
    package func releaseWithheldCredit() {
        guard withheldCredit > 0 else { return }
        let bytes = withheldCredit
        withheldCredit = 0
        credit(bytes)
    }

    private func credit(_ bytes: Int) {
        outbox.returnConnectionCredit(bytes)
        if !receivingEnded, let increment = receiveWindow.consumed(bytes) {
            outbox.send(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }

    // MARK: Sending

    package func sendHeaders(_ block: HPACKHeaders) {
        outbox.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block))))
    }

    /// Queues `body`; `owner` hears when the stream is writable again after it.
    package func sendData(_ body: ByteBuffer, owner: some HTTP2StreamOwner) {
        let length = body.readableBytes
        guard length > 0, !sendingEnded else { return }
        // The connection is gone: nothing is sent, nothing is held.
        guard let promise = outbox.makePromise() else { return }
        bufferedBytes += length
        outbox.dataQueued(length)
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            let wasWritable = isWritable
            bufferedBytes -= length
            wasActive = true
            // When the connection fell under its limit, it told every stream, this one too.
            let connectionReleased = outbox.dataWritten(length)
            if !wasWritable && isWritable && !connectionReleased {
                owner.streamBecameWritable()
            }
        }
        outbox.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body)))), promise: promise)
    }

    /// Ends the stream: trailers as a last HEADERS, else END_STREAM on the
    /// frame just sent, else an empty DATA frame.
    package func sendEnd(trailers: HTTPHeaders?) {
        guard !sendingEnded else { return }
        sendingEnded = true
        if let trailers, !trailers.isEmpty {
            let block = HTTP2HeaderMapping.fieldBlock(trailers)
            outbox.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block, endStream: true))))
        } else if !outbox.endHeldFrame(of: id) {
            let empty = outbox.allocator.buffer(capacity: 0)
            outbox.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true))))
        }
    }

    /// Nothing more goes either way.
    package func sendReset(_ code: HTTP2ErrorCode) {
        sendingEnded = true
        receivingEnded = true
        outbox.reset(id, code)
        outbox.scheduleFlush()
    }
}
