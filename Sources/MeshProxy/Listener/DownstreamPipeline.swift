import MeshConfig
import MeshHTTP2
import NIOCore

/// The handlers behind the protocol detector, per protocol.
enum DownstreamPipeline {
    /// HTTP/1.1: one handler parses requests and writes responses itself.
    /// `headStarted`: when the first request's first byte came, which its
    /// `requestHeadersTimeout` counts from.
    static func installHTTP1(
        after detector: ChannelHandlerContext, connection: DownstreamConnectionInfo, worker: LoopWorker,
        headStarted: NIODeadline
    ) throws {
        try detector.pipeline.syncOperations.addHandler(
            HTTP1DownstreamConnection(connection: connection, worker: worker, headStarted: headStarted),
            position: .after(detector.handler)
        )
    }

    /// HTTP/2 with prior knowledge: `HTTP2ConnectionCodec` for the
    /// connection's framing and state, then one handler for all streams at frame level. A drain sends GOAWAY and
    /// closes once the streams finish (the proxy's drain timeout bounds it).
    static func installHTTP2(
        after detector: ChannelHandlerContext, connection: DownstreamConnectionInfo, worker: LoopWorker,
        maxHeaderListSize: Int
    ) throws {
        // Headers over the listener limit must reach the exchange to be
        // answered with 431, so HPACK accepts a little more than the limit.
        let limits = connection.limits
        let settings = HTTP2LocalSettings(
            maxConcurrentStreams: limits.maxConcurrentStreams, initialWindowSize: limits.http2StreamWindow,
            maxHeaderListSize: maxHeaderListSize * 2 + 4096, headerBlockTimeout: limits.requestHeadersTimeout)
        let codec = HTTP2ConnectionCodec(role: .server, settings: settings)
        let stats = worker.stats
        let listener = connection.listenerLabel
        codec.onPeerError = { code, endedConnection in
            stats.http2PeerError(listener: listener, code: code, endedConnection: endedConnection)
            // A stream over the limit is refused; no other stream error is.
            if code == .refusedStream && !endedConnection {
                stats.limitReached(listener: listener, .maxConcurrentStreams)
            }
        }
        codec.onHeaderBlockTimeout = {
            stats.limitReached(listener: listener, .requestHeadersTimeout)
        }
        try detector.pipeline.syncOperations.addHandlers(
            [codec, HTTP2DownstreamConnection(info: connection, worker: worker)],
            position: .after(detector.handler)
        )
    }
}
