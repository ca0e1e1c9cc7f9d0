import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import MeshHTTP2

/// The order in which the codec tells the handler behind it what happened:
/// a frame is handled whole before the events it caused, even when the
/// handler writes to the connection while it handles it.
@Suite struct HTTP2ConnectionCodecOrderTests {
    /// Writes a WINDOW_UPDATE while it handles DATA, as a stream returning
    /// credit does, and writes down what it saw, in order.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        typealias OutboundOut = HTTP2Frame
        var log: [String] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard case .data = frame.payload else { return }
            log.append("data")
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: 10))), promise: nil)
            log.append("data handled")
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let closed = event as? StreamClosedEvent {
                log.append("closed \(Int(closed.streamID))")
            }
        }
    }

    private static func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int32, _ payload: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeHTTP2FrameHeader(length: payload.count, type: type, flags: flags, streamID: HTTP2StreamID(stream))
        buffer.writeBytes(payload)
        return buffer
    }

    @Test func aStreamClosedByTheFrameBeingHandledIsToldAfterItsHandling() throws {
        let channel = EmbeddedChannel()
        let handler = Handler()
        try channel.pipeline.syncOperations.addHandlers([
            HTTP2ConnectionCodec(role: .client, settings: HTTP2LocalSettings(
                maxConcurrentStreams: nil, initialWindowSize: 65535, maxHeaderListSize: 16384)),
            handler,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // A whole request on stream 1: our side of it is ended.
        try channel.writeAndFlush(HTTP2Frame(streamID: 1, payload: .headers(.init(
            headers: [":method": "GET", ":scheme": "http", ":path": "/", ":authority": "a"], endStream: true)))).wait()
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var block = ByteBuffer()
        try encoder.encode(headers: HPACKHeaders([(":status", "200")]), to: &block)
        var response = Self.frame(HTTP2Wire.FrameType.settings, 0, 0)
        response.writeImmutableBuffer(Self.frame(HTTP2Wire.FrameType.headers, HTTP2Wire.Flag.endHeaders, 1, Array(block.readableBytesView)))
        response.writeImmutableBuffer(Self.frame(HTTP2Wire.FrameType.data, HTTP2Wire.Flag.endStream, 1, [1, 2, 3]))
        try channel.writeInbound(response)
        #expect(handler.log == ["data", "data handled", "closed 1"])
        _ = try channel.finish()
    }
}
