import MeshConfig
import NIOCore

/// The handlers behind the protocol detector, per protocol.
enum DownstreamPipeline {
    /// Per-stream receive window offered to clients; see `UpstreamHTTP2Settings.streamWindow`.
    static let streamWindow = 1 << 20
    static let maxConcurrentStreams = 1024

    /// HTTP/1.1: one handler parses requests and writes responses itself.
    static func installHTTP1(
        after detector: ChannelHandlerContext, connection: DownstreamConnectionInfo, worker: LoopWorker
    ) throws {
        try detector.pipeline.syncOperations.addHandler(
            HTTP1DownstreamConnection(connection: connection, worker: worker),
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
        let settings = HTTP2LocalSettings(
            maxConcurrentStreams: maxConcurrentStreams, initialWindowSize: streamWindow,
            maxHeaderListSize: maxHeaderListSize * 2 + 4096)
        let codec = HTTP2ConnectionCodec(role: .server, settings: settings)
        let stats = worker.stats
        let listener = connection.listenerLabel
        codec.onPeerError = { code, endedConnection in
            stats.http2PeerError(listener: listener, code: code, endedConnection: endedConnection)
        }
        try detector.pipeline.syncOperations.addHandlers(
            [
                codec,
                HTTP2DownstreamConnection(info: connection, worker: worker, streamWindowSize: streamWindow),
            ],
            position: .after(detector.handler)
        )
    }
}
