import Logging
import MeshConfig
import MeshHTTP2
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import NIOHTTP1
import Testing

@testable import MeshProxy

/// A drain (`ChannelShouldQuiesceEvent`, sent to every client connection
/// when the proxy stops) seen from one client connection: what is in
/// flight finishes, nothing new starts, and the connection closes once it
/// has nothing left to do.
@Suite("Drain")
struct DrainTests {
    private static func info(http2: Bool) -> DownstreamConnectionInfo {
        DownstreamConnectionInfo(
            listenerName: "l", listenerLabel: 0, direction: .inbound, clientIP: nil, isHTTP2: http2,
            idleTimeout: .seconds(60), limits: DownstreamLimits(ListenerLimits()))
    }

    private static func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int32, _ payload: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeHTTP2FrameHeader(length: payload.count, type: type, flags: flags, streamID: HTTP2StreamID(stream))
        buffer.writeBytes(payload)
        return buffer
    }

    /// What the proxy wrote since the last call, as (type, flags, stream, payload) per frame.
    private static func written(_ channel: EmbeddedChannel) throws -> [(UInt8, UInt8, Int32, ByteBuffer)] {
        var bytes = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes.writeBuffer(&buffer)
        }
        var frames: [(UInt8, UInt8, Int32, ByteBuffer)] = []
        while let header = bytes.readHTTP2FrameHeader(), let payload = bytes.readSlice(length: header.length) {
            frames.append((header.type, header.flags, Int32(header.streamID), payload))
        }
        return frames
    }

    @Test func anHTTP2ConnectionFinishesItsStreamsRefusesNewOnesThenCloses() throws {
        let channel = EmbeddedChannel()
        let worker = LoopWorker(eventLoop: channel.embeddedEventLoop, logger: Logger(label: "drain-test"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandlers([
            HTTP2ConnectionCodec(role: .server, settings: HTTP2LocalSettings(
                maxConcurrentStreams: 100, initialWindowSize: 65535, maxHeaderListSize: 16384)),
            HTTP2DownstreamConnection(info: Self.info(http2: true), worker: worker),
        ])
        // The client gives no stream window: the answer's body waits, and
        // stream 1 stays in flight.
        var opening = ByteBuffer(bytes: HTTP2Wire.clientPreface)
        opening.writeImmutableBuffer(Self.frame(HTTP2Wire.FrameType.settings, 0, 0, [0, 4, 0, 0, 0, 0]))
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var block = ByteBuffer()
        try encoder.encode(
            headers: HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")]),
            to: &block)
        let flags = HTTP2Wire.Flag.endHeaders | HTTP2Wire.Flag.endStream
        opening.writeImmutableBuffer(Self.frame(HTTP2Wire.FrameType.headers, flags, 1, Array(block.readableBytesView)))
        try channel.writeInbound(opening)
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
        let answer = try Self.written(channel)
        #expect(answer.contains { $0.0 == HTTP2Wire.FrameType.headers && $0.2 == 1 })
        #expect(!answer.contains { $0.0 == HTTP2Wire.FrameType.data && $0.2 == 1 })

        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
        let goAway = try Self.written(channel).first { $0.0 == HTTP2Wire.FrameType.goAway }
        #expect(goAway?.3.getInteger(at: goAway!.3.readerIndex, as: UInt32.self) == 1, "the last stream it serves")

        // A stream opened after the GOAWAY is refused; the connection stays for stream 1.
        var late = ByteBuffer()
        try encoder.encode(
            headers: HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")]),
            to: &late)
        try channel.writeInbound(Self.frame(HTTP2Wire.FrameType.headers, flags, 3, Array(late.readableBytesView)))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
        let refusal = try Self.written(channel).first { $0.0 == HTTP2Wire.FrameType.rstStream && $0.2 == 3 }
        #expect(refusal?.3.getInteger(at: refusal!.3.readerIndex, as: UInt32.self) == UInt32(HTTP2ErrorCode.refusedStream.networkCode))
        #expect(channel.isActive)

        // Window for stream 1: its answer ends, and with it the connection.
        try channel.writeInbound(Self.frame(HTTP2Wire.FrameType.windowUpdate, 0, 1, [0, 1, 0, 0]))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
        let rest = try Self.written(channel)
        #expect(rest.contains { $0.0 == HTTP2Wire.FrameType.data && $0.2 == 1 && $0.1 & HTTP2Wire.Flag.endStream != 0 })
        #expect(!channel.isActive)
    }

    @Test func anIdleHTTP1ConnectionClosesAtOnce() throws {
        let channel = EmbeddedChannel()
        let worker = LoopWorker(eventLoop: channel.embeddedEventLoop, logger: Logger(label: "drain-test"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(HTTP1DownstreamConnection(
            connection: Self.info(http2: false), worker: worker, headStarted: channel.embeddedEventLoop.now))
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nhost: a\r\n\r\n"))
        channel.embeddedEventLoop.run()
        var response = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            response.writeBuffer(&buffer)
        }
        #expect(String(buffer: response).hasPrefix("HTTP/1.1 404"))
        #expect(channel.isActive, "kept alive between requests")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}
