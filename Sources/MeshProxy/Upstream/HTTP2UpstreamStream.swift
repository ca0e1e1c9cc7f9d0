import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One stream of an upstream HTTP/2 connection, serving one exchange: the
/// request goes out as frames, the response comes back as HTTP/1-shaped
/// parts. Credit for response DATA goes back only while the client takes the
/// bytes; request DATA waiting for the endpoint's window makes the stream
/// unwritable, which pauses the client.
final class HTTP2UpstreamStream: ExchangeUpstream {
    /// Request bytes a stream may have queued before the client is paused.
    static let maxBufferedBytes = 256 * 1024

    let id: HTTP2StreamID
    private unowned let owner: HTTP2Connection
    private var exchange: ProxyExchange?
    private var receiveWindow = HTTP2ReceiveWindow(size: UpstreamHTTP2Settings.streamWindow)
    private var withheldCredit = 0
    private var headersSent = false
    private var requestEnded = false
    private var responseStarted = false
    private var responseEnded = false
    private var bufferedBytes = 0

    init(id: HTTP2StreamID, owner: HTTP2Connection, exchange: ProxyExchange) {
        self.id = id
        self.owner = owner
        self.exchange = exchange
    }

    // MARK: Response in (from the connection)

    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let exchange else { return }
        if responseStarted {
            // A second HEADERS block is the trailers, and ends the response.
            guard let trailers = HTTP2HeaderMapping.trailers(headers.headers) else {
                malformedResponse(exchange)
                return
            }
            finishResponse(exchange, trailers: trailers)
            return
        }
        guard let (status, fields) = HTTP2HeaderMapping.response(headers.headers) else {
            malformedResponse(exchange)
            return
        }
        // 1xx answers are interim: the proxy answers Expect itself, so they go no further.
        if status.code < 200 {
            return
        }
        responseStarted = true
        let head = HTTPResponseHead(version: .http2, status: status, headers: fields)
        exchange.upstreamReceived(.head(head))
        if headers.endStream {
            finishResponse(exchange, trailers: nil)
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        if data.endStream {
            responseEnded = true
        }
        guard let exchange else {
            credit(flowControlledLength)
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            exchange.upstreamReceived(.body(buffer))
        }
        if data.endStream {
            finishResponse(exchange, trailers: nil)
        } else if !exchange.downstreamIsWritable {
            withheldCredit += flowControlledLength
            return
        }
        credit(flowControlledLength)
    }

    private func finishResponse(_ exchange: ProxyExchange, trailers: HTTPHeaders?) {
        responseEnded = true
        self.exchange = nil
        exchange.upstreamReceived(.end(trailers))
        if !requestEnded {
            // The endpoint answered before the request ended: stop sending it.
            reset(.cancel)
        }
    }

    func flushDownstream() {
        exchange?.flushDownstream()
    }

    /// A response block that is not valid HTTP/2: the stream is reset and the exchange fails.
    private func malformedResponse(_ exchange: ProxyExchange) {
        self.exchange = nil
        reset(.protocolError)
        exchange.upstreamFailed(.upstreamReset)
    }

    /// The stream is gone: reset by the endpoint, refused by GOAWAY, or the connection closed.
    /// The endpoint did not process the stream (REFUSED_STREAM, or above a
    /// GOAWAY's last stream): the exchange may send the request again.
    func refused() {
        guard let exchange else { return }
        self.exchange = nil
        exchange.upstreamRefused()
    }

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

    private func credit(_ bytes: Int) {
        owner.returnConnectionCredit(bytes)
        if !responseEnded, let increment = receiveWindow.consumed(bytes) {
            owner.send(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }

    private func reset(_ code: HTTP2ErrorCode) {
        requestEnded = true
        responseEnded = true
        owner.send(HTTP2Frame(streamID: id, payload: .rstStream(code)))
        owner.outbox?.scheduleFlush()
    }

    // MARK: ExchangeUpstream

    var isWritable: Bool { owner.isWritable && bufferedBytes < Self.maxBufferedBytes }

    func write(_ part: HTTPClientRequestPart) {
        switch part {
        case .head(let head):
            headersSent = true
            owner.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: HTTP2HeaderMapping.requestBlock(head)))))
        case .body(.byteBuffer(let body)):
            writeData(body)
        case .body(.fileRegion):
            preconditionFailure("the proxy never sends file regions")
        case .end(let trailers):
            guard !requestEnded else { return }
            requestEnded = true
            if let trailers, !trailers.isEmpty {
                let block = HTTP2HeaderMapping.fieldBlock(trailers)
                owner.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block, endStream: true))))
            } else if !(owner.outbox?.endHeldFrame(of: id) ?? true) {
                let empty = owner.allocator.buffer(capacity: 0)
                owner.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true))))
            }
        }
    }

    private func writeData(_ body: ByteBuffer) {
        let length = body.readableBytes
        guard length > 0, !requestEnded else { return }
        bufferedBytes += length
        let promise = owner.makePromise()
        promise?.futureResult.assumeIsolated().whenComplete { [self] _ in
            let wasWritable = bufferedBytes < Self.maxBufferedBytes
            bufferedBytes -= length
            if !wasWritable && isWritable {
                exchange?.upstreamBecameWritable()
            }
        }
        owner.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body)))), promise: promise)
    }

    func flush() {
        owner.outbox?.scheduleFlush()
    }

    func resumeReading() {
        guard withheldCredit > 0 else { return }
        let bytes = withheldCredit
        withheldCredit = 0
        credit(bytes)
    }

    func abandon() {
        exchange = nil
        if headersSent {
            reset(.cancel)
        } else {
            owner.forget(self)
        }
    }

    func abort() {
        exchange = nil
        if headersSent && !(requestEnded && responseEnded) {
            reset(.cancel)
        } else if !headersSent {
            owner.forget(self)
        }
    }
}
