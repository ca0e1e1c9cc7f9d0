import NIOCore
import NIOHTTP1
import NIOHPACK
import NIOHTTP2

/// One request stream of a client's HTTP/2 connection: it feeds its exchange
/// the request and writes the response as frames. Backpressure both ways:
/// flow-control credit for request DATA goes back only while the upstream
/// takes bytes, and the stream counts as unwritable while its response DATA
/// waits in NIOHTTP2 for the client's window.
final class HTTP2DownstreamStream: ExchangeDownstream {
    /// Response bytes a stream may have queued before the upstream is paused.
    static let maxBufferedBytes = 256 * 1024

    let id: HTTP2StreamID
    private unowned let owner: HTTP2DownstreamConnection
    private var exchange: ProxyExchange?
    private var receiveWindow: HTTP2ReceiveWindow
    /// Request bytes received while the upstream could not take them; credited on `resumeReads`.
    private var withheldCredit = 0
    private var requestEnded = false
    private var responseEnded = false
    private var bufferedBytes = 0

    init(id: HTTP2StreamID, owner: HTTP2DownstreamConnection, windowSize: Int) {
        self.id = id
        self.owner = owner
        receiveWindow = HTTP2ReceiveWindow(size: windowSize)
    }

    var connection: DownstreamConnectionInfo { owner.info }

    // MARK: Request in (from the connection)

    func start(head: HTTPRequestHead, listener: CompiledListener?, endStream: Bool) {
        let exchange = ProxyExchange(for: head, downstream: self, worker: owner.worker)
        self.exchange = exchange
        exchange.start(head: head, hasBody: !endStream, listener: listener)
        if endStream {
            requestEnded = true
            self.exchange?.downstreamReceived(.end(nil))
        }
    }

    func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
        if data.endStream {
            requestEnded = true
        }
        guard let exchange else {
            credit(flowControlledLength)
            return
        }
        if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
            exchange.downstreamReceived(.body(.byteBuffer(buffer)))
        }
        if data.endStream {
            exchange.downstreamReceived(.end(nil))
        }
        if exchange.shouldPauseDownstreamReads {
            withheldCredit += flowControlledLength
        } else {
            credit(flowControlledLength)
        }
    }

    func receivedTrailers(_ block: HPACKHeaders) {
        requestEnded = true
        guard let trailers = HTTP2HeaderMapping.trailers(block) else {
            responseEnded = true
            owner.reset(id, .protocolError)
            flush()
            closed()
            return
        }
        exchange?.downstreamReceived(.end(trailers))
    }

    func flushUpstream() {
        exchange?.flushUpstream()
    }

    /// The stream is gone (finished, reset by the client, or the connection closed).
    func closed() {
        let active = exchange
        exchange = nil
        active?.downstreamClosed()
    }

    func connectionBecameWritable() {
        if isWritable {
            exchange?.downstreamBecameWritable()
        }
    }

    private func credit(_ bytes: Int) {
        owner.returnConnectionCredit(bytes)
        // A stream the client ended needs no more stream-level credit.
        if !requestEnded, let increment = receiveWindow.consumed(bytes) {
            owner.send(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }

    // MARK: ExchangeDownstream

    var isWritable: Bool { owner.isWritable && bufferedBytes < Self.maxBufferedBytes }

    func resumeReads() {
        guard withheldCredit > 0 else { return }
        let bytes = withheldCredit
        withheldCredit = 0
        credit(bytes)
    }

    func write(_ part: HTTPServerResponsePart, flush: Bool) {
        switch part {
        case .head(let head):
            writeResponseHead(status: head.status, headers: head.headers)
        case .body(.byteBuffer(let body)):
            writeData(body)
        case .body(.fileRegion):
            preconditionFailure("the proxy never sends file regions")
        case .end(let trailers):
            writeEnd(trailers: trailers)
            return
        }
        if flush {
            self.flush()
        }
    }

    func flush() {
        owner.outbox?.scheduleFlush()
    }

    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        let block = HTTP2HeaderMapping.responseBlock(status: status, headers: headers)
        owner.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block))))
    }

    private func writeData(_ body: ByteBuffer) {
        let length = body.readableBytes
        guard length > 0 else { return }
        bufferedBytes += length
        let promise = owner.makePromise()
        promise?.futureResult.assumeIsolated().whenComplete { [self] _ in
            let wasWritable = bufferedBytes < Self.maxBufferedBytes
            bufferedBytes -= length
            if !wasWritable && isWritable {
                exchange?.downstreamBecameWritable()
            }
        }
        owner.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body)))), promise: promise)
    }

    func writeEnd(trailers: HTTPHeaders?) {
        responseEnded = true
        if let trailers, !trailers.isEmpty {
            let block = HTTP2HeaderMapping.fieldBlock(trailers)
            owner.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block, endStream: true))))
        } else if !(owner.outbox?.endHeldFrame(of: id) ?? true) {
            let empty = owner.allocator.buffer(capacity: 0)
            owner.send(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true))))
        }
        flush()
    }

    func writeLocalResponse(for error: ProxyError, isGRPC: Bool, requestID: String) -> HTTPResponseStatus {
        let response = LocalResponse.parts(
            for: error, isGRPC: isGRPC, requestID: requestID, closeConnection: false, allocator: owner.allocator
        )
        writeResponseHead(status: response.head.status, headers: response.head.headers)
        if let body = response.body {
            writeData(body)
        }
        writeEnd(trailers: response.trailers)
        return response.head.status
    }

    func abortResponse() {
        // Nothing more goes either way on a reset stream.
        responseEnded = true
        requestEnded = true
        owner.reset(id, .internalError)
        flush()
    }

    func exchangeFinished(_ finished: ProxyExchange) {
        guard exchange === finished else { return }
        exchange = nil
        if withheldCredit > 0 {
            resumeReads()
        }
        // RFC 9113 section 8.1: a complete response may end a request still
        // being sent; NO_ERROR tells the client to stop.
        if responseEnded && !requestEnded {
            owner.reset(id, .noError)
            flush()
        }
    }
}
