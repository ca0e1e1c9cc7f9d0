import MeshHTTP2
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One stream of an upstream HTTP/2 connection, serving one try: the
/// request goes out as frames, the response comes back as HTTP/1-shaped
/// parts. Response DATA is credited back only while the client takes the
/// bytes; request DATA waiting for the endpoint's window makes the stream
/// unwritable, which pauses the client.
package final class HTTP2UpstreamStream: HTTP2StreamOwner, ExchangeUpstream {
    /// Strong: the try may still hold this stream after the connection
    /// closed; the cycle with the connection's stream table ends when the
    /// stream leaves the table.
    private let owner: HTTP2Connection
    /// Its flow control and the frames it sends.
    package let stream: HTTP2Stream
    private var request: (any UpstreamRequest)?
    private var headersSent = false
    private var responseStarted = false
    /// A HEAD request's response has no body, whatever its `content-length` says.
    private var requestIsHEAD = false

    package init(id: HTTP2StreamID, owner: HTTP2Connection, request: any UpstreamRequest) {
        self.owner = owner
        self.request = request
        stream = HTTP2Stream(id: id, outbox: owner.outbox, receiveWindowSize: UpstreamHTTP2Settings.streamWindow)
    }

    package var id: HTTP2StreamID { stream.id }
    package var isWritable: Bool { stream.isWritable }

    // MARK: Response in (from the connection)

    package func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let request else { return }
        if responseStarted {
            // A second HEADERS block is the trailers, and ends the response.
            guard let trailers = HTTP2HeaderMapping.trailers(headers.headers),
                  stream.bodyMatchesDeclaredLength(received: 0, endStream: true) else {
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
        stream.declaredBodyBytesLeft = requestIsHEAD || status == .notModified ? 0 : contentLength
        guard stream.bodyMatchesDeclaredLength(received: 0, endStream: headers.endStream) else {
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

    package func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        if data.endStream {
            stream.receivingEnded = true
        }
        guard let request else {
            stream.received(flowControlledLength, withhold: false)
            return
        }
        guard stream.bodyMatchesDeclaredLength(received: data.data.readableBytes, endStream: data.endStream) else {
            stream.received(flowControlledLength, withhold: false)
            malformedResponse(request)
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            request.received(.body(buffer))
        }
        if data.endStream {
            finishResponse(request, trailers: nil)
        }
        stream.received(flowControlledLength, withhold: !data.endStream && !request.clientIsReading)
    }

    private func finishResponse(_ request: any UpstreamRequest, trailers: HTTPHeaders?) {
        stream.receivingEnded = true
        self.request = nil
        request.received(.end(trailers))
        if !stream.sendingEnded {
            // The endpoint answered before the request ended: stop sending it.
            stream.sendReset(.cancel)
        }
    }

    package func streamReadComplete() {
        request?.readComplete()
    }

    /// A response block that is not valid HTTP/2: the stream is reset and the try fails.
    private func malformedResponse(_ request: any UpstreamRequest) {
        self.request = nil
        stream.sendReset(.protocolError)
        request.failed(.reset)
    }

    /// The endpoint did not process the stream (REFUSED_STREAM, or above a
    /// GOAWAY's last stream): the request may be sent again.
    package func refused() {
        stream.sendingEnded = true
        stream.receivingEnded = true
        stream.outbox.discardHeldFrame(of: stream.id)
        guard let request else { return }
        self.request = nil
        request.refused()
    }

    package func receivedReset(_ code: HTTP2ErrorCode) {
        if code == .refusedStream {
            refused()
        } else {
            closed()
        }
    }

    /// The stream is gone: reset by the endpoint, or the connection closed.
    package func closed() {
        guard let request else { return }
        self.request = nil
        request.failed(.reset)
    }

    package func connectionBecameWritable() {
        if stream.isWritable {
            request?.endpointBecameWritable()
        }
    }

    package func streamBecameWritable() {
        request?.endpointBecameWritable()
    }

    // MARK: ExchangeUpstream

    /// HTTP/2 frames its body itself: whether one follows shows in END_STREAM.
    package func writeHead(_ head: HTTPRequestHead, hasBody: Bool) {
        headersSent = true
        requestIsHEAD = head.method == .HEAD
        stream.sendHeaders(HTTP2HeaderMapping.requestBlock(head))
    }

    package func writeBody(_ body: ByteBuffer) {
        stream.sendData(body, owner: self)
    }

    package func writeEnd(trailers: HTTPHeaders?) {
        stream.sendEnd(trailers: trailers)
    }

    package func flush() {
        stream.outbox.scheduleFlush()
    }

    package func resumeReading() {
        stream.releaseWithheldCredit()
    }

    package func abandon() {
        request = nil
        if headersSent {
            stream.sendReset(.cancel)
        } else {
            owner.forget(self)
        }
    }

    package func abort() {
        request = nil
        if headersSent && !(stream.sendingEnded && stream.receivingEnded) {
            stream.sendReset(.cancel)
        } else if !headersSent {
            owner.forget(self)
        }
    }
}
