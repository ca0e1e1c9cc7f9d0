import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2

@testable import MeshHTTP2

// The HTTP/2 connection codec with HPACK decoding, as a server (the bytes
// are a client's, after its preface) and as a client (the bytes are an
// endpoint's answers to three requests), split across reads. A handler
// behind it answers what it is given, so writing, flow control and closes
// run too. Invariants:
// - nothing reaches the handler once the connection failed;
// - open streams stay within the advertised limit, held bytes within one frame;
// - a stream's frames reach the handler only while it is open, and
//   nothing of a stream follows its close;
// - what the codec writes is whole frames, and every header block it
//   writes decodes.

/// Answers what the codec passes up, and checks the order of what it sees.
final class Peer: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let role: HTTP2ConnectionState.Role
    /// Streams opened and not closed.
    var open: Set<HTTP2StreamID> = []
    /// Streams the codec closed or reset: nothing of theirs may follow.
    var closed: Set<HTTP2StreamID> = []
    /// Streams the remote side ended (END_STREAM): no DATA or HEADERS may follow.
    var ended: Set<HTTP2StreamID> = []

    init(role: HTTP2ConnectionState.Role) {
        self.role = role
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        require(context.channel.isActive, "a frame reached the handler after the connection closed")
        let id = frame.streamID
        switch frame.payload {
        case .headers(let headers):
            require(id != .rootStream, "HEADERS on stream 0")
            require(!closed.contains(id) && !ended.contains(id), "HEADERS on stream \(id) after its end")
            if !open.contains(id) {
                require(role == .server, "a response on stream \(id), which the client never opened")
                open.insert(id)
                answer(id, context)
            }
            if headers.endStream {
                ended.insert(id)
            }
        case .data(let data):
            require(open.contains(id) && !ended.contains(id), "DATA on stream \(id), which is not open or ended")
            if data.endStream {
                ended.insert(id)
            }
        case .rstStream:
            require(open.contains(id), "RST_STREAM on stream \(id), which is not open")
            open.remove(id)
            closed.insert(id)
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let close = event as? StreamClosedEvent {
            open.remove(close.streamID)
            closed.insert(close.streamID)
        }
    }

    /// A third of the requests get a whole answer, a third a reset, a
    /// third a head whose body never ends.
    private func answer(_ id: HTTP2StreamID, _ context: ChannelHandlerContext) {
        switch Int(id) % 3 {
        case 0:
            context.write(wrapOutboundOut(HTTP2Frame(
                streamID: id, payload: .headers(.init(headers: HPACKHeaders([(":status", "200"), ("x-a", "b")]))))),
                promise: nil)
            let body = ByteBuffer(repeating: 0x61, count: 70_000)
            context.write(wrapOutboundOut(HTTP2Frame(
                streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: true)))), promise: nil)
        case 1:
            context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.cancel))), promise: nil)
        default:
            context.write(wrapOutboundOut(HTTP2Frame(
                streamID: id, payload: .headers(.init(headers: HPACKHeaders([(":status", "204")]))))), promise: nil)
        }
        context.flush()
    }
}

/// Checks the codec's output: whole frames, header blocks that decode.
struct OutputCheck {
    var unparsed = ByteBuffer()
    var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    var block: ByteBuffer?
    var sawClientPreface = false

    mutating func take(_ channel: EmbeddedChannel, role: HTTP2ConnectionState.Role) {
        while var buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            unparsed.writeBuffer(&buffer)
        }
        if role == .client && !sawClientPreface {
            guard unparsed.readableBytes >= HTTP2Wire.clientPreface.count else { return }
            require(unparsed.readBytes(length: HTTP2Wire.clientPreface.count) == HTTP2Wire.clientPreface,
                    "the client did not start with the preface")
            sawClientPreface = true
        }
        while let length = unparsed.peekHTTP2FrameLength(), unparsed.readableBytes >= HTTP2Wire.frameHeaderLength + length {
            guard let header = unparsed.readHTTP2FrameHeader(), var payload = unparsed.readSlice(length: length) else {
                require(false, "a frame that does not read back")
                return
            }
            switch header.type {
            case HTTP2Wire.FrameType.headers, HTTP2Wire.FrameType.continuation:
                require((header.type == HTTP2Wire.FrameType.headers) == (block == nil),
                        "a CONTINUATION without HEADERS, or HEADERS inside a block")
                var fragment = block ?? ByteBuffer()
                fragment.writeBuffer(&payload)
                block = fragment
                if header.has(HTTP2Wire.Flag.endHeaders), var whole = block {
                    block = nil
                    decoder.maxHeaderListSize = 1 << 20
                    require((try? decoder.decodeHeaders(from: &whole)) != nil, "a header block we wrote does not decode")
                }
            default:
                require(block == nil, "a frame inside a header block")
            }
        }
    }
}

@_cdecl("FuzzHTTP2Codec_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let role: HTTP2ConnectionState.Role = flags & 1 == 0 ? .server : .client
        let (_, reads) = input.reads()
        let settings = HTTP2LocalSettings(maxConcurrentStreams: 8, initialWindowSize: 65535, maxHeaderListSize: 4096)
        let codec = HTTP2ConnectionCodec(role: role, settings: settings)
        let peer = Peer(role: role)
        let channel = EmbeddedChannel()
        var output = OutputCheck()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHandlers([codec, peer])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            require(false, "the harness could not start: \(error)")
        }
        if role == .server {
            try? channel.writeInbound(ByteBuffer(bytes: HTTP2Wire.clientPreface))
        } else {
            // Three requests out, for the endpoint's bytes to answer.
            for id in [1, 3, 5] {
                let head = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")])
                channel.write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: head, endStream: id == 5))),
                              promise: nil)
                peer.open.insert(HTTP2StreamID(id))
            }
            channel.flush()
        }
        if flags & 2 != 0 {
            // An empty SETTINGS first, as every peer must send: the rest is reached sooner.
            try? channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 4, 0, 0, 0, 0, 0]))
        }
        for read in reads where channel.isActive {
            try? channel.writeInbound(ByteBuffer(bytes: read))
            channel.pipeline.fireChannelReadComplete()
            output.take(channel, role: role)
            require(codec.state.streams.count <= (role == .server ? 8 : 3), "\(codec.state.streams.count) streams open")
            require((codec.state.unread?.readableBytes ?? 0) <= HTTP2Wire.frameHeaderLength + HTTP2Wire.defaultMaxFrameSize,
                    "holds \(codec.state.unread?.readableBytes ?? 0) unread bytes")
        }
        output.take(channel, role: role)
    }
}
