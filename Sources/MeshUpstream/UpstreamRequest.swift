import NIOCore
import NIOHTTP1

/// Why a try got no (complete) response from its endpoint, as the pools and
/// upstream connections report it.
package enum UpstreamFailure: Equatable, Sendable {
    /// No connection could be opened.
    case connectFailure
    /// The cluster already has `maxPendingRequests` waiting for connections.
    case pendingOverflow
    /// The connection or stream failed or closed before the response ended.
    case reset
}

/// One try of a request, as the connection pools and the upstream
/// connections and streams see it. A pool queues it, counts it among the
/// cluster's pending requests while it waits (`queued`), and hands it a
/// connection or stream (`connectionReady`) or gives up (`failed`); the
/// connection or stream then delivers the response through it. Nothing on
/// this side knows the exchange behind it.
package protocol UpstreamRequest: AnyObject {
    /// Still wants a connection or stream: a try that ended while queued does not.
    var isWaitingForConnection: Bool { get }
    /// The pool has nothing free: the try waits as the `pendingRequests`th
    /// pending request of the cluster, until it is served or leaves the queue.
    func queued(pendingRequests: Int)
    func connectionReady(_ upstream: any ExchangeUpstream)
    /// No connection, or the one serving the try failed before the response ended.
    func failed(_ failure: UpstreamFailure)
    /// The endpoint refused the stream unprocessed (HTTP/2 REFUSED_STREAM,
    /// or a stream above a GOAWAY's last stream ID).
    func refused()
    func received(_ part: HTTPClientResponsePart)
    /// A read from the endpoint completed: what it delivered may be flushed to the client.
    func readComplete()
    /// Whether the client takes response bytes now; while it does not, the
    /// upstream stops reading (HTTP/1.1) or withholds credit (HTTP/2).
    var clientIsReading: Bool { get }
    /// The endpoint takes request bytes again.
    func endpointBecameWritable()
}

/// The endpoint side of one try: a pooled HTTP/1.1 connection
/// (`HTTP1UpstreamHandler`) or one stream of a multiplexed HTTP/2 connection
/// (`HTTP2UpstreamStream`).
package protocol ExchangeUpstream: AnyObject {
    /// Whether the endpoint can take more request bytes now.
    var isWritable: Bool { get }
    /// The request head; `hasBody` says whether a body follows (an HTTP/1.1
    /// request without a Content-Length is then sent chunked).
    func writeHead(_ head: HTTPRequestHead, hasBody: Bool)
    func writeBody(_ body: ByteBuffer)
    func writeEnd(trailers: HTTPHeaders?)
    func flush()
    /// The client can take more response bytes again.
    func resumeReading()
    /// The try ended before this upstream served it: give it back unused.
    func abandon()
    /// Gives up on the request in progress (close the connection or reset the stream).
    func abort()
}
