import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One stream of an upstream HTTP/2 connection, serving one exchange: the
/// request goes out as frames, the response comes back as HTTP/1-shaped
/// parts. Response DATA is credited back only while the client takes the
/// bytes; request DATA waiting for the endpoint's window makes the stream
/// unwritable, which pauses the client.
final class HTTP2UpstreamStream: HTTP2Stream, ExchangeUpstream {
    /// Strong: the exchange may still hold this stream after the connection
    /// closed; the cycle with the connection's stream table ends when the
    /// stream leaves the table.
    private let owner: HTTP2Connection
    private var exchange: ProxyExchange?
    private var headersSent = false
    private var responseStarted = false
    /// A HEAD request's response has no body, whatever its `content-length` says.
    private var requestIsHEAD = false

    init(id: HTTP2StreamID, owner: HTTP2Connection, exchange: ProxyExchange) {
        self.owner = owner
        self.exchange = exchange
        super.init(id: id, outbox: owner.outbox, receiveWindowSize: UpstreamHTTP2Settings.streamWindow)
    }

    // MARK: Response in (from the connection)

    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let exchange else { return }
        if responseStarted {
            // A second HEADERS block is the trailers, and ends the response.
            guard let trailers = HTTP2HeaderMapping.trailers(headers.headers),
                  bodyMatchesDeclaredLength(received: 0, endStream: true) else {
                malformedResponse(exchange)
                return
            }
            finishResponse(exchange, trailers: trailers)
            return
        }
        guard let (status, fields, contentLength) = HTTP2HeaderMapping.response(headers.headers) else {
            malformedResponse(exchange)
            return
        }
        // 1xx answers are interim: the proxy answers Expect itself, so they go no further.
        if status.code < 200 {
            return
        }
        // RFC 9110 sections 8.6 and 15.4.5: the length describes a body that is not sent.
        declaredBodyBytesLeft = requestIsHEAD || status == .notModified ? 0 : contentLength
        guard bodyMatchesDeclaredLength(received: 0, endStream: headers.endStream) else {
            malformedResponse(exchange)
            return
        }
        responseStarted = true
        exchange.upstreamReceived(.head(HTTPResponseHead(version: .http2, status: status, headers: fields)))
        // The exchange may have let go of this stream on seeing the head (to retry).
        if headers.endStream, let exchange = self.exchange {
            finishResponse(exchange, trailers: nil)
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        if data.endStream {
            receivingEnded = true
        }
        guard let exchange else {
            received(flowControlledLength, withhold: false)
            return
        }
        guard bodyMatchesDeclaredLength(received: data.data.readableBytes, endStream: data.endStream) else {
            received(flowControlledLength, withhold: false)
            malformedResponse(exchange)
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            exchange.upstreamReceived(.body(buffer))
        }
        if data.endStream {
            finishResponse(exchange, trailers: nil)
        }
        received(flowControlledLength, withhold: !data.endStream && !exchange.downstreamIsWritable)
    }

    private func finishResponse(_ exchange: ProxyExchange, trailers: HTTPHeaders?) {
        receivingEnded = true
        self.exchange = nil
        exchange.upstreamReceived(.end(trailers))
        if !sendingEnded {
            // The endpoint answered before the request ended: stop sending it.
            sendReset(.cancel)
        }
    }

    override func readComplete() {
        exchange?.flushDownstream()
    }

    /// A response block that is not valid HTTP/2: the stream is reset and the exchange fails.
    private func malformedResponse(_ exchange: ProxyExchange) {
        self.exchange = nil
        sendReset(.protocolError)
        exchange.upstreamFailed(.upstreamReset)
    }

    /// The endpoint did not process the stream (REFUSED_STREAM, or above a
    /// GOAWAY's last stream): the exchange may send the request again.
    func refused() {
        sendingEnded = true
        receivingEnded = true
        outbox.discardHeldFrame(of: id)
        guard let exchange else { return }
        self.exchange = nil
        exchange.upstreamRefused()
    }

    /// The stream is gone: reset by the endpoint, or the connection closed.
    func closed() {
        guard let exchange else { return }
        self.exchange = nil
        exchange.upstreamFailed(.upstreamReset)
    }

    func connectionBecameWritable() {
        if isWritable {
            exchange?.upstreamBecameWritable()
        }
    }

    override func becameWritable() {
        exchange?.upstreamBecameWritable()
    }

    // MARK: ExchangeUpstream

    func write(_ part: HTTPClientRequestPart) {
        switch part {
        case .head(let head):
            headersSent = true
            requestIsHEAD = head.method == .HEAD
            sendHeaders(HTTP2HeaderMapping.requestBlock(head))
        case .body(.byteBuffer(let body)):
            sendData(body)
        case .body(.fileRegion):
            preconditionFailure("the proxy never sends file regions")
        case .end(let trailers):
            sendEnd(trailers: trailers)
        }
    }

    func flush() {
        outbox.scheduleFlush()
    }

    func resumeReading() {
        releaseWithheldCredit()
    }

    func abandon() {
        exchange = nil
        if headersSent {
            sendReset(.cancel)
        } else {
            owner.forget(self)
        }
    }

    func abort() {
        exchange = nil
        if headersSent && !(sendingEnded && receivingEnded) {
            sendReset(.cancel)
        } else if !headersSent {
            owner.forget(self)
        }
    }
}
