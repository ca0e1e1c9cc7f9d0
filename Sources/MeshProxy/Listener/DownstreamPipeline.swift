import MeshConfig
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The handlers behind the protocol detector, per protocol.
enum DownstreamPipeline {
    /// Per-stream receive window offered to clients; see `UpstreamHTTP2Settings.streamWindow`.
    static let streamWindow = 1 << 20
    static let maxConcurrentStreams = 1024

    /// HTTP/1.1: NIO's codec; the `DownstreamHandler` answers pipelined
    /// requests one at a time, in order.
    static func installHTTP1(
        after detector: ChannelHandlerContext, connection: DownstreamConnectionInfo, worker: LoopWorker
    ) throws {
        let pipeline = detector.pipeline.syncOperations
        let responseEncoder = HTTPResponseEncoder()
        let requestDecoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
        try pipeline.addHandlers(
            [responseEncoder, requestDecoder, DownstreamHandler(connection: connection, worker: worker)],
            position: .after(detector.handler)
        )
    }

    /// HTTP/2 with prior knowledge: one child channel per stream, each ending
    /// in a `DownstreamHandler`. The connection manager turns a drain into
    /// GOAWAY and closes once the streams finish (or `drainTimeout` passes).
    static func installHTTP2(
        after detector: ChannelHandlerContext, connection: DownstreamConnectionInfo, worker: LoopWorker,
        maxHeaderListSize: Int, drainTimeout: TimeAmount
    ) throws {
        let pipeline = detector.pipeline.syncOperations
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: detector.eventLoop,
            configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: drainTimeout, keepalive: nil)
        )
        var connectionConfiguration = NIOHTTP2Handler.ConnectionConfiguration()
        connectionConfiguration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            // Headers over the listener limit must reach the DownstreamHandler
            // to be answered with 431, so HPACK accepts a little more than the limit.
            HTTP2Setting(parameter: .maxHeaderListSize, value: maxHeaderListSize * 2 + 4096),
        ]
        var streamConfiguration = NIOHTTP2Handler.StreamConfiguration()
        streamConfiguration.targetWindowSize = streamWindow
        let http2 = NIOHTTP2Handler(
            mode: .server,
            eventLoop: detector.eventLoop,
            connectionConfiguration: connectionConfiguration,
            streamConfiguration: streamConfiguration,
            streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ServerCodec(),
                    DownstreamHandler(connection: connection, worker: worker),
                ])
            }
        }
        try pipeline.addHandlers([http2, manager, HTTP2ConnectionErrorHandler()], position: .after(detector.handler))
    }
}

/// Closes an HTTP/2 connection after a connection error: NIOHTTP2 sends the
/// GOAWAY, and RFC 9113 section 5.4.1 says the connection must then close.
/// Stream errors reset only their stream, so they leave the connection open.
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !(error is NIOHTTP2Errors.StreamError) {
            context.close(promise: nil)
        }
    }
}
