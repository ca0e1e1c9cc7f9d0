import MeshConfig
import MeshHTTP2
import NIOCore

/// A listener's per-client limit (`ListenerLimits`), as the `limit` label of
/// `swiftmesh_listener_limit_reached_total`.
enum ListenerLimit: String, Sendable {
    /// An HTTP/2 stream over `maxConcurrentStreams` was refused.
    case maxConcurrentStreams = "max_concurrent_streams"
    /// A connection's buffered response bytes reached
    /// `perConnectionBufferLimitBytes`: its streams stopped reading from their endpoints.
    case connectionBuffer = "connection_buffer"
    /// The proxy stopped reading requests from a client that left answers
    /// unread, none still being produced (not a download's own backpressure).
    case unreadAnswers = "unread_answers"
    case requestHeadersTimeout = "request_headers_timeout"
    case streamIdleTimeout = "stream_idle_timeout"
    /// A request over the connection's `maxShareOfClusterRequests` got 429.
    case clusterShare = "cluster_share"
}

/// A listener's `ListenerLimits` in the forms its connections use, read once
/// when a connection is accepted: a reload applies to new connections.
struct DownstreamLimits: Sendable {
    let maxConcurrentStreams: Int
    let bufferLimitBytes: Int
    let requestHeadersTimeout: TimeAmount
    let streamIdleTimeout: TimeAmount
    /// Percent of a cluster's `maxRequests`; 100: no share is checked.
    let maxShareOfClusterRequests: Int

    init(_ limits: ListenerLimits) {
        maxConcurrentStreams = limits.maxConcurrentStreams
        bufferLimitBytes = limits.perConnectionBufferLimitBytes
        requestHeadersTimeout = .nanoseconds(limits.requestHeadersTimeout.nanoseconds)
        streamIdleTimeout = .nanoseconds(limits.streamIdleTimeout.nanoseconds)
        maxShareOfClusterRequests = limits.maxShareOfClusterRequests
    }

    /// Requests of a cluster whose circuit breaker allows `maxRequests` that
    /// one connection may hold: the share rounded up, at least one.
    func clusterShare(ofMaxRequests maxRequests: Int) -> Int {
        max(1, (maxRequests * maxShareOfClusterRequests + 99) / 100)
    }

    /// HTTP/2 receive windows offered to a client: the connection's is the
    /// buffer limit (request bytes the endpoint has not taken stay under
    /// it), a stream's a quarter of it (so one stalled upload cannot take
    /// the whole connection's window), between 16 KiB and 1 MiB.
    var http2ConnectionWindow: Int { max(bufferLimitBytes, HTTP2FrameOutbox.initialConnectionWindow) }
    var http2StreamWindow: Int { min(max(bufferLimitBytes / 4, 16 * 1024), 1 << 20) }
}
