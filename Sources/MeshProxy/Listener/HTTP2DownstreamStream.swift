import MeshHTTP2
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One request stream of a client's HTTP/2 connection: it feeds its exchange
/// the request and writes the response as frames. Request DATA is credited
/// back only while the upstream takes the bytes; the stream is unwritable
/// while its response DATA waits for the client's window.
final class HTTP2DownstreamStream: HTTP2StreamOwner, ExchangeDownstream {
    /// Strong: the exchange may still hold this stream after the connection
    /// closed; the cycle with the connection's stream table ends when the
    /// stream leaves the table.
    private let owner: HTTP2DownstreamConnection
    /// Its flow control and the frames it sends.
    let stream: HTTP2Stream
    private var exchange: ProxyExchange?
    /// When the connection's idleness check last found the stream silent
    /// since the check before (nil: it was not); see `HTTP2Stream.wasActive`.
    var silentSince: NIODeadline?

    init(id: HTTP2StreamID, owner: HTTP2DownstreamConnection, windowSize: Int) {
        self.owner = owner
        stream = HTTP2Stream(id: id, outbox: owner.outbox, receiveWindowSize: windowSize)
    }

    var connection: DownstreamConnectionInfo { owner.info }
    var id: HTTP2StreamID { stream.id }
    var isWritable: Bool { stream.isWritable }

    // MARK: Request in (from the connection)

    func start(head: HTTPRequestHead, contentLength: Int?, listener: CompiledListener?, endStream: Bool) {
        stream.declaredBodyBytesLeft = contentLength
        guard stream.bodyMatchesDeclaredLength(received: 0, endStream: endStream) else {
            stream.sendReset(.protocolError)
            return
        }
        // Ended before the exchange starts: an answer it gives at once must
        // not reset a request that was whole.
        if endStream {
            stream.receivingEnded = true
        }
        let exchange = ProxyExchange(for: head, hasBody: !endStream, downstream: self, worker: owner.worker)
        self.exchange = exchange
        exchange.start(head: head, listener: listener)
        if endStream {
            self.exchange?.downstreamReceived(.end(nil))
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        stream.wasActive = true
        if data.endStream {
            stream.receivingEnded = true
        }
        guard let exchange else {
            stream.received(flowControlledLength, withhold: false)
            return
        }
        guard stream.bodyMatchesDeclaredLength(received: data.data.readableBytes, endStream: data.endStream) else {
            stream.received(flowControlledLength, withhold: false)
            malformedRequest()
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            exchange.downstreamReceived(.body(buffer))
        }
        if data.endStream {
            exchange.downstreamReceived(.end(nil))
        }
        stream.received(flowControlledLength, withhold: exchange.shouldPauseDownstreamReads)
    }

    /// A second header block on the request: its trailers (the codec
    /// refused any that does not end the stream).
    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        stream.wasActive = true
        stream.receivingEnded = true
        guard let trailers = HTTP2HeaderMapping.trailers(headers.headers),
              stream.bodyMatchesDeclaredLength(received: 0, endStream: true) else {
            malformedRequest()
            return
        }
        exchange?.downstreamReceived(.end(trailers))
    }

    /// The request broke HTTP/2's rules mid-stream: the stream is reset and
    /// the exchange ends as if the client had gone.
    private func malformedRequest() {
        stream.sendReset(.protocolError)
        closed()
    }

    func streamReadComplete() {
        exchange?.flushUpstream()
    }

    func receivedReset(_ code: HTTP2ErrorCode) {
        closed()
    }

    /// The stream is gone (finished, reset by the client, or the connection closed).
    func closed() {
        let active = exchange
        exchange = nil
        active?.downstreamClosed()
    }

    /// An exchange is producing the stream's response.
    var isServing: Bool { exchange != nil }

    /// Nothing went either way for the listener's `streamIdleTimeout`: the
    /// exchange ends with its answer (408, 504, or a reset once the response
    /// started); a stream whose exchange is over (its last bytes wait for
    /// the client's window) is reset.
    func idleTimedOut() {
        if let exchange {
            exchange.streamIdleTimedOut()
        } else {
            stream.sendReset(.cancel)
        }
    }

    func connectionBecameWritable() {
        if stream.isWritable {
            exchange?.downstreamBecameWritable()
        }
    }

    func streamBecameWritable() {
        exchange?.downstreamBecameWritable()
    }

    // MARK: ExchangeDownstream

    func resumeReads() {
        stream.releaseWithheldCredit()
    }

    func takeClusterShare(_ cluster: Int, maxRequests: Int) -> Bool {
        owner.takeClusterShare(cluster, maxRequests: maxRequests)
    }

    func releaseClusterShare(_ cluster: Int) {
        owner.releaseClusterShare(cluster)
    }

    func writeInterim(_ status: HTTPResponseStatus) {
        stream.wasActive = true
        stream.sendHeaders(HTTP2HeaderMapping.responseBlock(
            status: status, headers: HTTPHeaders()))
        flush()
    }

    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        stream.wasActive = true
        stream.sendHeaders(HTTP2HeaderMapping.responseBlock(
            status: status, headers: headers))
    }

    func writeBody(_ body: ByteBuffer) {
        stream.wasActive = true
        stream.sendData(body, owner: self)
    }

    func flush() {
        stream.outbox.scheduleFlush()
    }

    func writeEnd(trailers: HTTPHeaders?) {
        stream.wasActive = true
        stream.sendEnd(trailers: trailers)
        flush()
    }

    func writeLocalResponse(
        for error: ProxyError, isGRPC: Bool, requestID: String, explainHint: ExplainHint?
    ) -> HTTPResponseStatus {
        writeLocalAnswer(for: error, isGRPC: isGRPC, requestID: requestID, explainHint: explainHint, allocator: stream.outbox.allocator)
    }

    func abortResponse() {
        stream.sendReset(.internalError)
    }

    func exchangeFinished(_ finished: ProxyExchange) {
        guard exchange === finished else { return }
        exchange = nil
        stream.releaseWithheldCredit()
        // RFC 9113 section 8.1: a complete response may end a request still
        // being sent; NO_ERROR tells the client to stop.
        if stream.sendingEnded && !stream.receivingEnded {
            stream.sendReset(.noError)
        }
    }
}
