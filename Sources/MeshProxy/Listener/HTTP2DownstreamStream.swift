import NIOCore
import NIOHTTP1
import NIOHPACK
import NIOHTTP2

/// One request stream of a client's HTTP/2 connection: it feeds its exchange
/// the request and writes the response as frames. Request DATA is credited
/// back only while the upstream takes the bytes; the stream is unwritable
/// while its response DATA waits for the client's window.
final class HTTP2DownstreamStream: HTTP2Stream, ExchangeDownstream {
    /// Strong: the exchange may still hold this stream after the connection
    /// closed; the cycle with the connection's stream table ends when the
    /// stream leaves the table.
    private let owner: HTTP2DownstreamConnection
    private var exchange: ProxyExchange?
    /// When the connection's idleness check last found the stream silent
    /// since the check before (nil: it was not); see `wasActive`.
    var silentSince: NIODeadline?

    init(id: HTTP2StreamID, owner: HTTP2DownstreamConnection, windowSize: Int) {
        self.owner = owner
        super.init(id: id, outbox: owner.outbox, receiveWindowSize: windowSize)
    }

    var connection: DownstreamConnectionInfo { owner.info }

    // MARK: Request in (from the connection)

    func start(head: HTTPRequestHead, contentLength: Int?, listener: CompiledListener?, endStream: Bool) {
        declaredBodyBytesLeft = contentLength
        guard bodyMatchesDeclaredLength(received: 0, endStream: endStream) else {
            sendReset(.protocolError)
            return
        }
        let exchange = ProxyExchange(for: head, hasBody: !endStream, downstream: self, worker: owner.worker)
        self.exchange = exchange
        exchange.start(head: head, listener: listener)
        if endStream {
            receivingEnded = true
            self.exchange?.downstreamReceived(.end(nil))
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        wasActive = true
        if data.endStream {
            receivingEnded = true
        }
        guard let exchange else {
            received(flowControlledLength, withhold: false)
            return
        }
        guard bodyMatchesDeclaredLength(received: data.data.readableBytes, endStream: data.endStream) else {
            received(flowControlledLength, withhold: false)
            malformedRequest()
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            exchange.downstreamReceived(.body(buffer))
        }
        if data.endStream {
            exchange.downstreamReceived(.end(nil))
        }
        received(flowControlledLength, withhold: exchange.shouldPauseDownstreamReads)
    }

    func receivedTrailers(_ block: HPACKHeaders) {
        wasActive = true
        receivingEnded = true
        guard let trailers = HTTP2HeaderMapping.trailers(block),
              bodyMatchesDeclaredLength(received: 0, endStream: true) else {
            malformedRequest()
            return
        }
        exchange?.downstreamReceived(.end(trailers))
    }

    /// The request broke HTTP/2's rules mid-stream: the stream is reset and
    /// the exchange ends as if the client had gone.
    private func malformedRequest() {
        sendReset(.protocolError)
        closed()
    }

    override func readComplete() {
        exchange?.flushUpstream()
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
            sendReset(.cancel)
        }
    }

    func connectionBecameWritable() {
        if isWritable {
            exchange?.downstreamBecameWritable()
        }
    }

    override func becameWritable() {
        exchange?.downstreamBecameWritable()
    }

    // MARK: ExchangeDownstream

    func resumeReads() {
        releaseWithheldCredit()
    }

    func takeClusterShare(_ cluster: Int, maxRequests: Int) -> Bool {
        owner.takeClusterShare(cluster, maxRequests: maxRequests)
    }

    func releaseClusterShare(_ cluster: Int) {
        owner.releaseClusterShare(cluster)
    }

    func writeInterim(_ status: HTTPResponseStatus) {
        wasActive = true
        sendHeaders(HTTP2HeaderMapping.responseBlock(
            status: status, headers: HTTPHeaders()))
        flush()
    }

    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        wasActive = true
        sendHeaders(HTTP2HeaderMapping.responseBlock(
            status: status, headers: headers))
    }

    func writeBody(_ body: ByteBuffer) {
        wasActive = true
        sendData(body)
    }

    func flush() {
        outbox.scheduleFlush()
    }

    func writeEnd(trailers: HTTPHeaders?) {
        wasActive = true
        sendEnd(trailers: trailers)
        flush()
    }

    func writeLocalResponse(
        for error: ProxyError, isGRPC: Bool, requestID: String, explainHint: ExplainHint?
    ) -> HTTPResponseStatus {
        writeLocalAnswer(for: error, isGRPC: isGRPC, requestID: requestID, explainHint: explainHint, allocator: outbox.allocator)
    }

    func abortResponse() {
        sendReset(.internalError)
    }

    func exchangeFinished(_ finished: ProxyExchange) {
        guard exchange === finished else { return }
        exchange = nil
        releaseWithheldCredit()
        // RFC 9113 section 8.1: a complete response may end a request still
        // being sent; NO_ERROR tells the client to stop.
        if sendingEnded && !receivingEnded {
            sendReset(.noError)
        }
    }
}
