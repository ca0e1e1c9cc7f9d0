import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One stream of an upstream HTTP/2 connection, serving one try: the
/// request goes out as frames, the response comes back as HTTP/1-shaped
/// parts. Response DATA is credited back only while the client takes the
/// bytes; request DATA waiting for the endpoint's window makes the stream
/// unwritable, which pauses the client.
final class HTTP2UpstreamStream: HTTP2Stream, ExchangeUpstream {
    /// Strong: the try may still hold this stream after the connection
    /// closed; the cycle with the connection's stream table ends when the
    /// stream leaves the table.
    private let owner: HTTP2Connection
    private var request: (any UpstreamRequest)?
    private var headersSent = false
    private var responseStarted = false
    /// A HEAD request's response has no body, whatever its `content-length` says.
    private var requestIsHEAD = false

    init(id: HTTP2StreamID, owner: HTTP2Connection, request: any UpstreamRequest) {
        self.owner = owner
        self.request = request
        super.init(id: id, outbox: owner.outbox, receiveWindowSize: UpstreamHTTP2Settings.streamWindow)
    }

    // MARK: Response in (from the connection)

    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let request else { return }
        if responseStarted {
            // A second HEADERS block is the trailers, and ends the response.
            guard let trailers = HTTP2HeaderMapping.trailers(headers.headers),
                  bodyMatchesDeclaredLength(received: 0, endStream: true) else {
                malformedResponse(request)
                return
            }
            finishResponse(request, trailers: trailers)
            return
        }
        guard let (status, fields, contentLength) = HTTP2HeaderMapping.response(headers.headers) else {
            malformedResponse(request)
            return
        }
        // 1xx answers are interim: the proxy answers Expect itself, so they go no further.
        if status.code < 200 {
            return
        }
        // RFC 9110 sections 8.6 and 15.4.5: the length describes a body that is not sent.
        declaredBodyBytesLeft = requestIsHEAD || status == .notModified ? 0 : contentLength
        guard bodyMatchesDeclaredLength(received: 0, endStream: headers.endStream) else {
            malformedResponse(request)
            return
        }
        responseStarted = true
        request.received(.head(HTTPResponseHead(version: .http2, status: status, headers: fields)))
        // The try may have let go of this stream on seeing the head (to retry).
        if headers.endStream, let request = self.request {
            finishResponse(request, trailers: nil)
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        if data.endStream {
            receivingEnded = true
        }
        guard let request else {
            received(flowControlledLength, withhold: false)
            return
        }
        guard bodyMatchesDeclaredLength(received: data.data.readableBytes, endStream: data.endStream) else {
            received(flowControlledLength, withhold: false)
            malformedResponse(request)
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            request.received(.body(buffer))
        }
        if data.endStream {
            finishResponse(request, trailers: nil)
        }
        received(flowControlledLength, withhold: !data.endStream && !request.clientIsReading)
    }

    private func finishResponse(_ request: any UpstreamRequest, trailers: HTTPHeaders?) {
        receivingEnded = true
        self.request = nil
        request.received(.end(trailers))
        if !sendingEnded {
            // The endpoint answered before the request ended: stop sending it.
            sendReset(.cancel)
        }
    }

    override func readComplete() {
        request?.readComplete()
    }

    /// A response block that is not valid HTTP/2: the stream is reset and the try fails.
    private func malformedResponse(_ request: any UpstreamRequest) {
        self.request = nil
        sendReset(.protocolError)
        request.failed(.reset)
    }

    /// The endpoint did not process the stream (REFUSED_STREAM, or above a
    /// GOAWAY's last stream): the request may be sent again.
    func refused() {
        sendingEnded = true
        receivingEnded = true
        outbox.discardHeldFrame(of: id)
        guard let request else { return }
        self.request = nil
        request.refused()
    }

    /// The stream is gone: reset by the endpoint, or the connection closed.
    func closed() {
        guard let request else { return }
        self.request = nil
        request.failed(.reset)
    }

    func connectionBecameWritable() {
        if isWritable {
            request?.endpointBecameWritable()
        }
    }

    override func becameWritable() {
        request?.endpointBecameWritable()
    }

    // MARK: ExchangeUpstream

    /// HTTP/2 frames its body itself: whether one follows shows in END_STREAM.
    func writeHead(_ head: HTTPRequestHead, hasBody: Bool) {
        headersSent = true
        requestIsHEAD = head.method == .HEAD
        sendHeaders(HTTP2HeaderMapping.requestBlock(head))
    }

    func writeBody(_ body: ByteBuffer) {
        sendData(body)
    }

    func writeEnd(trailers: HTTPHeaders?) {
        sendEnd(trailers: trailers)
    }

    func flush() {
        outbox.scheduleFlush()
    }

    func resumeReading() {
        releaseWithheldCredit()
    }

    func abandon() {
        request = nil
        if headersSent {
            sendReset(.cancel)
        } else {
            owner.forget(self)
        }
    }

    func abort() {
        request = nil
        if headersSent && !(sendingEnded && receivingEnded) {
            sendReset(.cancel)
        } else if !headersSent {
            owner.forget(self)
        }
    }
}
