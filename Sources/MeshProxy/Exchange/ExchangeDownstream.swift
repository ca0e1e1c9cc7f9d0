import NIOCore
import NIOHTTP1

/// The client side of one exchange: an HTTP/1.1 connection
/// (`DownstreamHandler`) or one stream of an HTTP/2 connection
/// (`HTTP2DownstreamStream`). The exchange speaks in HTTP/1-shaped heads and
/// bodies to both; each side translates to its wire format.
protocol ExchangeDownstream: AnyObject {
    var connection: DownstreamConnectionInfo { get }
    /// Whether the client can take more response bytes now.
    var isWritable: Bool { get }
    /// The upstream can take more request bytes: read (HTTP/1.1) or grant
    /// flow-control credit (HTTP/2) again.
    func resumeReads()
    /// An interim response (100 Continue), sent at once.
    func writeInterim(_ status: HTTPResponseStatus)
    func writeResponseHead(status: HTTPResponseStatus, headers: HTTPHeaders)
    func writeBody(_ body: ByteBuffer)
    func flush()
    /// Ends the response (with trailers, if any) and flushes.
    func writeEnd(trailers: HTTPHeaders?)
    /// Writes the proxy's own answer for `error`; returns the status sent.
    func writeLocalResponse(
        for error: ProxyError, isGRPC: Bool, requestID: String, explainHint: ExplainHint?
    ) -> HTTPResponseStatus
    /// The response cannot be completed: HTTP/1.1 closes the connection, HTTP/2 resets the stream.
    func abortResponse()
    /// Whether the client's connection may hold one more request of the
    /// cluster labelled `cluster`, whose circuit breaker allows
    /// `maxRequests` (the listener's `maxShareOfClusterRequests`); takes it if so.
    func takeClusterShare(_ cluster: Int, maxRequests: Int) -> Bool
    func releaseClusterShare(_ cluster: Int)
    func exchangeFinished(_ finished: ProxyExchange)
}

extension ExchangeDownstream {
    /// Writes `LocalResponse`'s answer for `error` through this side's own
    /// head, body and end (each side adds its framing, e.g. `connection: close`).
    func writeLocalAnswer(
        for error: ProxyError, isGRPC: Bool, requestID: String, explainHint: ExplainHint?, allocator: ByteBufferAllocator
    ) -> HTTPResponseStatus {
        let response = LocalResponse.parts(
            for: error, isGRPC: isGRPC, requestID: requestID, explainHint: explainHint, allocator: allocator)
        writeResponseHead(status: response.head.status, headers: response.head.headers)
        if let body = response.body {
            writeBody(body)
        }
        writeEnd(trailers: response.trailers)
        return response.head.status
    }
}
