import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import MeshProxy
@testable import MeshHTTP2
@testable import MeshUpstream

/// A frame as the codec wrote it to the wire.
private struct WireFrame {
    var type: UInt8
    var flags: UInt8
    var stream: Int32
    var payload: ByteBuffer
}

/// A connection handler's view of the codec: an EmbeddedChannel with the
/// codec and a recorder of what it passes up.
private final class CodecHarness {
    let channel = EmbeddedChannel()
    let recorder = Recorder()
    private var peerEncoder = HPACKEncoder(allocator: ByteBufferAllocator())
    private var unparsed = ByteBuffer()

    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        var frames: [HTTP2Frame] = []
        var closed: [StreamClosedEvent] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            frames.append(unwrapInboundIn(data))
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? StreamClosedEvent {
                closed.append(event)
            }
        }
    }

    init(role: HTTP2ConnectionState.Role, settings: HTTP2LocalSettings = HTTP2LocalSettings(
        maxConcurrentStreams: 10, initialWindowSize: 65535, maxHeaderListSize: 16384)
    ) throws {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandlers([
            HTTP2ConnectionCodec(role: role, settings: settings), recorder,
        ])
    }

    /// The bytes the codec wrote since the last call, as frames (after the client preface, if any).
    func written() throws -> [WireFrame] {  // throws: readOutbound
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            unparsed.writeBuffer(&buffer)
        }
        if unparsed.readableBytesView.starts(with: HTTP2Wire.clientPreface) {
            unparsed.moveReaderIndex(forwardBy: HTTP2Wire.clientPreface.count)
        }
        var frames: [WireFrame] = []
        while let header = unparsed.readHTTP2FrameHeader() {
            guard let payload = unparsed.readSlice(length: header.length) else { break }
            frames.append(WireFrame(type: header.type, flags: header.flags, stream: Int32(header.streamID), payload: payload))
        }
        return frames
    }

    func send(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
    }

    func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int32, _ payload: [UInt8] = []) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeHTTP2FrameHeader(length: payload.count, type: type, flags: flags, streamID: HTTP2StreamID(stream))
        buffer.writeBytes(payload)
        return Array(buffer.readableBytesView)
    }

    func settings(_ values: [(UInt16, UInt32)] = []) -> [UInt8] {
        var payload = ByteBuffer()
        for (identifier, value) in values {
            payload.writeInteger(identifier)
            payload.writeInteger(value)
        }
        return frame(HTTP2Wire.FrameType.settings, 0, 0, Array(payload.readableBytesView))
    }

    /// A header block as a peer's HPACK encoder (NIOHPACK's, Huffman coding on) writes it.
    func block(_ fields: [(String, String)]) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try peerEncoder.encode(headers: HPACKHeaders(fields), to: &buffer)
        return Array(buffer.readableBytesView)
    }

    func request(_ stream: Int32, endStream: Bool = true) throws -> [UInt8] {
        let flags = HTTP2Wire.Flag.endHeaders | (endStream ? HTTP2Wire.Flag.endStream : 0)
        return frame(HTTP2Wire.FrameType.headers, flags, stream, try block([
            (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "example"),
        ]))
    }

    /// A server codec past the preface and SETTINGS exchange.
    static func server(_ clientSettings: [(UInt16, UInt32)] = []) throws -> CodecHarness {
        let harness = try CodecHarness(role: .server)
        try harness.send(HTTP2Wire.clientPreface + harness.settings(clientSettings))
        _ = try harness.written()
        return harness
    }

    func write(_ frame: HTTP2Frame) {
        channel.write(frame, promise: nil)
    }
}

@Suite struct HTTP2ConnectionCodecTests {
    @Test func serverSendsSettingsThenAcknowledgesTheClients() throws {
        let harness = try CodecHarness(role: .server)
        let first = try harness.written()
        #expect(first.map(\.type) == [HTTP2Wire.FrameType.settings])
        #expect(first[0].flags == 0)
        try harness.send(HTTP2Wire.clientPreface + harness.settings([(HTTP2Wire.Setting.maxConcurrentStreams, 7)]))
        let answer = try harness.written()
        #expect(answer.map(\.type) == [HTTP2Wire.FrameType.settings])
        #expect(answer[0].flags == HTTP2Wire.Flag.ack)
        guard case .settings(.settings(let settings)) = harness.recorder.frames.first?.payload else {
            Issue.record("the peer's SETTINGS did not reach the handler")
            return
        }
        #expect(settings.map(\.value) == [7])
    }

    @Test func clientStartsWithThePreface() throws {
        let harness = try CodecHarness(role: .client, settings: UpstreamHTTP2Settings.local)
        var bytes = ByteBuffer()
        while var buffer = try harness.channel.readOutbound(as: ByteBuffer.self) {
            bytes.writeBuffer(&buffer)
        }
        #expect(bytes.readableBytesView.starts(with: HTTP2Wire.clientPreface))
    }

    @Test func aMissingPrefaceFailsTheConnection() throws {
        let harness = try CodecHarness(role: .server)
        _ = try harness.written()
        try harness.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let goAway = try #require(try harness.written().first)
        #expect(goAway.type == HTTP2Wire.FrameType.goAway)
        #expect(goAway.payload.getInteger(at: goAway.payload.readerIndex + 4, as: UInt32.self) == 1)
    }

    @Test func requestHeadersReachTheHandlerDecoded() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1))
        guard case .headers(let headers) = harness.recorder.frames.last?.payload else {
            Issue.record("no HEADERS frame")
            return
        }
        #expect(headers.endStream)
        #expect(headers.headers.first(name: ":authority") == "example")
    }

    @Test func aHeaderBlockMayContinueInContinuationFrames() throws {
        let harness = try CodecHarness.server()
        let block = try harness.block([(":method", "GET"), (":scheme", "http"), (":path", "/long"), (":authority", "x")])
        try harness.send(
            harness.frame(HTTP2Wire.FrameType.headers, HTTP2Wire.Flag.endStream, 1, Array(block[..<3]))
                + harness.frame(HTTP2Wire.FrameType.continuation, 0, 1, Array(block[3..<5]))
                + harness.frame(HTTP2Wire.FrameType.continuation, HTTP2Wire.Flag.endHeaders, 1, Array(block[5...])))
        guard case .headers(let headers) = harness.recorder.frames.last?.payload else {
            Issue.record("no HEADERS frame")
            return
        }
        #expect(headers.headers.first(name: ":path") == "/long")
    }

    @Test func anInterruptedHeaderBlockIsAConnectionError() throws {
        let harness = try CodecHarness.server()
        let block = try harness.block([(":method", "GET")])
        try harness.send(
            harness.frame(HTTP2Wire.FrameType.headers, 0, 1, block)
                + harness.frame(HTTP2Wire.FrameType.ping, 0, 0, [UInt8](repeating: 0, count: 8)))
        let frames = try harness.written()
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.goAway])
        #expect(frames[0].payload.getInteger(at: frames[0].payload.readerIndex + 4, as: UInt32.self) == 1)
    }

    @Test func pingIsAnsweredWithTheSameData() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.frame(HTTP2Wire.FrameType.ping, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]))
        let pong = try #require(try harness.written().first)
        #expect(pong.type == HTTP2Wire.FrameType.ping && pong.flags == HTTP2Wire.Flag.ack)
        #expect(Array(pong.payload.readableBytesView) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func streamsOverTheLimitAreRefused() throws {
        let harness = try CodecHarness.server()
        for stream in stride(from: Int32(1), through: 21, by: 2) {
            try harness.send(harness.request(stream, endStream: false))
        }
        let resets = try harness.written().filter { $0.type == HTTP2Wire.FrameType.rstStream }
        #expect(resets.map(\.stream) == [21])
        #expect(resets[0].payload.getInteger(at: resets[0].payload.readerIndex, as: UInt32.self) == 7)
    }

    /// DATA waits for the peer's window, in order and with the trailers
    /// behind it, and the stream closes only once its end went out.
    @Test func dataWaitsForThePeersWindow() throws {
        let harness = try CodecHarness.server([(HTTP2Wire.Setting.initialWindowSize, 10)])
        try harness.send(harness.request(1))
        let stream = HTTP2StreamID(1)
        harness.write(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: HPACKHeaders([(":status", "200")])))))
        harness.write(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 0x61, count: 25))))))
        harness.write(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: HPACKHeaders([("grpc-status", "0")]), endStream: true))))
        harness.channel.flush()
        var frames = try harness.written()
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.headers, HTTP2Wire.FrameType.data])
        #expect(frames[1].payload.readableBytes == 10)
        #expect(harness.recorder.closed.isEmpty)

        try harness.send(harness.frame(HTTP2Wire.FrameType.windowUpdate, 0, 1, [0, 0, 0, 10]))
        frames = try harness.written()
        #expect(frames.map(\.payload.readableBytes) == [10])

        try harness.send(harness.frame(HTTP2Wire.FrameType.windowUpdate, 0, 1, [0, 0, 0, 100]))
        frames = try harness.written()
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.data, HTTP2Wire.FrameType.headers])
        #expect(frames[0].payload.readableBytes == 5 && frames[0].flags & HTTP2Wire.Flag.endStream == 0)
        #expect(frames[1].flags & HTTP2Wire.Flag.endStream != 0)
        #expect(harness.recorder.closed.map(\.streamID) == [stream])
    }

    @Test func dataBeyondTheReceiveWindowResetsTheStream() throws {
        let harness = try CodecHarness(role: .server, settings: HTTP2LocalSettings(
            maxConcurrentStreams: nil, initialWindowSize: 4, maxHeaderListSize: 16384))
        try harness.send(HTTP2Wire.clientPreface + harness.settings())
        try harness.send(harness.request(1, endStream: false))
        _ = try harness.written()
        try harness.send(harness.frame(HTTP2Wire.FrameType.data, 0, 1, [1, 2, 3, 4, 5]))
        let frames = try harness.written()
        let reset = try #require(frames.first { $0.type == HTTP2Wire.FrameType.rstStream })
        #expect(reset.payload.getInteger(at: reset.payload.readerIndex, as: UInt32.self) == 3)
        #expect(frames.contains { $0.type == HTTP2Wire.FrameType.windowUpdate && $0.stream == 0 })
        #expect(harness.recorder.closed.map(\.reason) == [.flowControlError])
    }

    /// The GOAWAY error code of the first GOAWAY written, if any.
    private func goAwayCode(_ frames: [WireFrame]) -> UInt32? {
        frames.first { $0.type == HTTP2Wire.FrameType.goAway }
            .flatMap { $0.payload.getInteger(at: $0.payload.readerIndex + 4, as: UInt32.self) }
    }

    /// A client trickling a header block holds the whole connection (no
    /// other frame may come between its parts): past the listener's
    /// requestHeadersTimeout the connection goes away.
    @Test(arguments: [true, false])
    func aHeaderBlockTrickledPastItsTimeoutEndsTheConnection(splitIntoContinuation: Bool) throws {
        let harness = try CodecHarness(role: .server, settings: HTTP2LocalSettings(
            maxConcurrentStreams: 10, initialWindowSize: 65535, maxHeaderListSize: 16384,
            headerBlockTimeout: .seconds(10)))
        try harness.send(HTTP2Wire.clientPreface + harness.settings())
        _ = try harness.written()
        let request = try harness.request(1)
        // Either a HEADERS frame cut short, or a whole HEADERS without END_HEADERS.
        let firstPart = splitIntoContinuation
            ? harness.frame(HTTP2Wire.FrameType.headers, 0, 1, Array(request[9...]))
            : Array(request.prefix(12))
        try harness.send(firstPart)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(harness.channel.isActive)
        #expect(try goAwayCode(harness.written()) == nil)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try goAwayCode(harness.written()) == 0)
        #expect(!harness.channel.isActive)
    }

    /// Header blocks that each arrive in time never add up to a timeout.
    @Test func headerBlocksInTimeDoNotTimeOut() throws {
        let harness = try CodecHarness(role: .server, settings: HTTP2LocalSettings(
            maxConcurrentStreams: 10, initialWindowSize: 65535, maxHeaderListSize: 16384,
            headerBlockTimeout: .seconds(10)))
        try harness.send(HTTP2Wire.clientPreface + harness.settings())
        for stream in stride(from: Int32(1), through: 9, by: 2) {
            let request = try harness.request(stream)
            try harness.send(Array(request.prefix(12)))
            harness.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
            try harness.send(Array(request[12...]))
            harness.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        }
        #expect(harness.channel.isActive)
        #expect(try goAwayCode(harness.written()) == nil)
    }

    @Test func aFrameSplitAcrossReadsIsReassembled() throws {
        let harness = try CodecHarness.server()
        let ping = harness.frame(HTTP2Wire.FrameType.ping, 0, 0, [9, 8, 7, 6, 5, 4, 3, 2])
        for byte in ping {
            try harness.send([byte])
        }
        let pong = try #require(try harness.written().first)
        #expect(Array(pong.payload.readableBytesView) == [9, 8, 7, 6, 5, 4, 3, 2])
    }

    /// Rapid reset (CVE-2023-44487): streams opened and reset at once fail
    /// the connection past `HTTP2FloodGuard.maxResets`, and it closes.
    @Test func rapidResetFailsTheConnection() throws {
        let harness = try CodecHarness.server()
        var stream: Int32 = 1
        for _ in 0...HTTP2FloodGuard.maxResets {
            try harness.send(harness.request(stream, endStream: false)
                + harness.frame(HTTP2Wire.FrameType.rstStream, 0, stream, [0, 0, 0, 8]))
            stream += 2
        }
        #expect(goAwayCode(try harness.written()) == 0xB)
        #expect(!harness.channel.isActive)
    }

    @Test func emptyDataFramesInARowFailTheConnection() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1, endStream: false))
        try harness.send(harness.frame(HTTP2Wire.FrameType.data, 0, 1) + harness.frame(HTTP2Wire.FrameType.data, 0, 1))
        #expect(goAwayCode(try harness.written()) == 0xB)
    }

    /// DATA for a stream already gone returns its connection credit, in one WINDOW_UPDATE per read.
    @Test func dataForAClosedStreamIsCreditedOncePerRead() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1, endStream: false) + harness.frame(HTTP2Wire.FrameType.rstStream, 0, 1, [0, 0, 0, 8]))
        try harness.send(harness.frame(HTTP2Wire.FrameType.data, 0, 1, [1, 2, 3]) + harness.frame(HTTP2Wire.FrameType.data, 0, 1, [4, 5]))
        let updates = try harness.written().filter { $0.type == HTTP2Wire.FrameType.windowUpdate }
        #expect(updates.map(\.stream) == [0])
        #expect(updates.first.flatMap { $0.payload.getInteger(at: $0.payload.readerIndex, as: UInt32.self) } == 5)
    }

    /// A response complete before its request (an early 503) ends with
    /// RST_STREAM NO_ERROR; while the response's body waits for the
    /// client's window, the reset waits behind it rather than discarding it.
    @Test func aNoErrorResetFollowsTheBodyItWaitsBehind() throws {
        let harness = try CodecHarness.server([(HTTP2Wire.Setting.initialWindowSize, 0)])
        try harness.send(harness.request(1, endStream: false))
        harness.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "503")])))))
        harness.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 50)), endStream: true))))
        harness.write(HTTP2Frame(streamID: 1, payload: .rstStream(.noError)))
        harness.channel.flush()
        #expect(try harness.written().map(\.type) == [HTTP2Wire.FrameType.headers])
        #expect(harness.recorder.closed.isEmpty)
        try harness.send(harness.frame(HTTP2Wire.FrameType.windowUpdate, 0, 1, [0, 0, 0, 100]))
        let frames = try harness.written()
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.data, HTTP2Wire.FrameType.rstStream])
        #expect(frames.first?.payload.readableBytes == 50)
        #expect(harness.recorder.closed.map(\.streamID) == [1])
    }

    @Test func aLargerInitialWindowReleasesHeldData() throws {
        let harness = try CodecHarness.server([(HTTP2Wire.Setting.initialWindowSize, 0)])
        try harness.send(harness.request(1))
        harness.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "200")])))))
        harness.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 50)), endStream: true))))
        harness.channel.flush()
        #expect(try harness.written().map(\.type) == [HTTP2Wire.FrameType.headers])
        try harness.send(harness.settings([(HTTP2Wire.Setting.initialWindowSize, 100)]))
        let frames = try harness.written().filter { $0.type == HTTP2Wire.FrameType.data }
        #expect(frames.map(\.payload.readableBytes) == [50])
        #expect(harness.recorder.closed.map(\.streamID) == [1])
    }

    @Test func aServerMayNotAskForPush() throws {
        let harness = try CodecHarness(role: .client, settings: UpstreamHTTP2Settings.local)
        _ = try harness.written()
        try harness.send(harness.settings([(HTTP2Wire.Setting.enablePush, 1)]))
        #expect(goAwayCode(try harness.written()) == 1)
    }

    @Test func aStreamNeverOpenedIsNotReset() throws {
        let harness = try CodecHarness.server()
        harness.write(HTTP2Frame(streamID: 5, payload: .rstStream(.cancel)))
        harness.channel.flush()
        #expect(try harness.written().isEmpty)
    }

    @Test func aLongHeaderBlockGoesOutInContinuationFrames() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1))
        let long = String(repeating: "v", count: 40_000)
        harness.write(HTTP2Frame(
            streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "200"), ("x-long", long)]), endStream: true))))
        harness.channel.flush()
        let frames = try harness.written()
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.headers, HTTP2Wire.FrameType.continuation, HTTP2Wire.FrameType.continuation])
        #expect(frames.map { $0.flags & HTTP2Wire.Flag.endHeaders != 0 } == [false, false, true])
        var block = ByteBuffer()
        for var frame in frames {
            block.writeBuffer(&frame.payload)
        }
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        decoder.maxHeaderListSize = 1 << 20
        #expect(try decoder.decodeHeaders(from: &block).first(name: "x-long") == long)
    }
}

/// RFC 9113 section 5.1's answers for frames on streams that are no
/// longer open, and the other rules h2spec checks (sections 3.4, 5.1.1, 5.3.1).
@Suite struct HTTP2ClosedStreamTests {
    private func codes(_ frames: [WireFrame], _ type: UInt8) -> [UInt32] {
        frames.filter { $0.type == type }.compactMap { frame in
            frame.payload.getInteger(at: frame.payload.readerIndex + (type == HTTP2Wire.FrameType.goAway ? 4 : 0), as: UInt32.self)
        }
    }

    private func resets(_ frames: [WireFrame]) -> [UInt32] { codes(frames, HTTP2Wire.FrameType.rstStream) }
    private func goAways(_ frames: [WireFrame]) -> [UInt32] { codes(frames, HTTP2Wire.FrameType.goAway) }

    /// The response ends the stream the client ended: both sides are done.
    private func respond(_ harness: CodecHarness, _ stream: Int32) {
        harness.write(HTTP2Frame(
            streamID: HTTP2StreamID(stream),
            payload: .headers(.init(headers: HPACKHeaders([(":status", "200")]), endStream: true))))
        harness.channel.flush()
    }

    @Test func aWrongPrefaceIsAnsweredWithoutWaitingForItsLength() throws {
        let harness = try CodecHarness(role: .server)
        _ = try harness.written()
        try harness.send(Array("INVALID".utf8))
        #expect(goAways(try harness.written()) == [1])
        #expect(!harness.channel.isActive)
    }

    @Test func dataAfterThePeersResetIsAStreamErrorStreamClosed() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1, endStream: false) + harness.frame(HTTP2Wire.FrameType.rstStream, 0, 1, [0, 0, 0, 8]))
        try harness.send(harness.frame(HTTP2Wire.FrameType.data, HTTP2Wire.Flag.endStream, 1, [1]))
        #expect(resets(try harness.written()) == [5])
        #expect(harness.channel.isActive)
    }

    @Test func headersAfterThePeersResetIsAStreamErrorStreamClosed() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1, endStream: false) + harness.frame(HTTP2Wire.FrameType.rstStream, 0, 1, [0, 0, 0, 8]))
        try harness.send(harness.request(1))
        #expect(resets(try harness.written()) == [5])
    }

    @Test func framesAfterThePeersEndStreamAreAConnectionErrorStreamClosed() throws {
        for late in [HTTP2Wire.FrameType.data, HTTP2Wire.FrameType.headers] {
            let harness = try CodecHarness.server()
            try harness.send(harness.request(1))
            respond(harness, 1)
            _ = try harness.written()
            let frame = late == HTTP2Wire.FrameType.data
                ? harness.frame(late, HTTP2Wire.Flag.endStream, 1, [1]) : try harness.request(1)
            try harness.send(frame)
            #expect(goAways(try harness.written()) == [5])
            #expect(!harness.channel.isActive)
        }
    }

    /// RFC 9113 section 5.4.2: a peer may send before our RST_STREAM reaches it; that is no error.
    @Test func framesOnAStreamWeResetAreDropped() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(1, endStream: false))
        harness.write(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
        harness.channel.flush()
        #expect(resets(try harness.written()) == [8])
        try harness.send(harness.frame(HTTP2Wire.FrameType.data, 0, 1, [1, 2]) + harness.request(1))
        let frames = try harness.written()
        #expect(resets(frames).isEmpty && goAways(frames).isEmpty)
        #expect(frames.map(\.type) == [HTTP2Wire.FrameType.windowUpdate])
    }

    @Test func aStreamLowerThanOneAlreadyOpenedIsAConnectionError() throws {
        let harness = try CodecHarness.server()
        try harness.send(harness.request(5))
        try harness.send(harness.request(3))
        #expect(goAways(try harness.written()) == [1])
    }

    @Test func headersThatDependOnTheirOwnStreamAreAStreamError() throws {
        let harness = try CodecHarness.server()
        let block = try harness.block([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")])
        let flags = HTTP2Wire.Flag.endHeaders | HTTP2Wire.Flag.endStream | HTTP2Wire.Flag.priority
        try harness.send(harness.frame(HTTP2Wire.FrameType.headers, flags, 1, [0, 0, 0, 1, 255] + block))
        #expect(resets(try harness.written()) == [1])
        #expect(harness.recorder.frames.allSatisfy { $0.streamID != 1 })
        // The block was decoded: the next request on the connection still decodes.
        try harness.send(harness.request(3))
        #expect(harness.recorder.frames.contains { $0.streamID == 3 })
    }

    @Test func priorityThatDependsOnItsOwnStreamIsAnError() throws {
        let idle = try CodecHarness.server()
        try idle.send(idle.frame(HTTP2Wire.FrameType.priority, 0, 1, [0, 0, 0, 1, 255]))
        #expect(goAways(try idle.written()) == [1])

        let open = try CodecHarness.server()
        try open.send(open.request(1, endStream: false))
        try open.send(open.frame(HTTP2Wire.FrameType.priority, 0, 1, [0, 0, 0, 1, 255]))
        #expect(resets(try open.written()) == [1])
        #expect(open.recorder.closed.map(\.streamID) == [1])
    }

    /// A client that sends malformed requests as fast as it could reset
    /// streams meets the same limit (the handler resets them PROTOCOL_ERROR).
    @Test func resetsForMalformedRequestsCountTowardTheLimit() throws {
        let harness = try CodecHarness.server()
        var stream: Int32 = 1
        for _ in 0...HTTP2FloodGuard.maxResets {
            try harness.send(harness.request(stream, endStream: false))
            harness.write(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: .rstStream(.protocolError)))
            stream += 2
        }
        harness.channel.flush()
        #expect(goAways(try harness.written()) == [0xB])
        #expect(!harness.channel.isActive)
    }

    /// The proxy's own resets (an endpoint gone) never count against the client.
    @Test func otherResetsOfTheHandlerDoNotCount() throws {
        let harness = try CodecHarness.server()
        var stream: Int32 = 1
        for _ in 0...HTTP2FloodGuard.maxResets {
            try harness.send(harness.request(stream, endStream: false))
            harness.write(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: .rstStream(.internalError)))
            stream += 2
        }
        harness.channel.flush()
        #expect(goAways(try harness.written()).isEmpty)
        #expect(harness.channel.isActive)
    }
}

@Suite struct HTTP2ClosedStreamsMemoryTests {
    @Test func remembersHowThePeerClosedAndWhatItSkipped() {
        var closed = HTTP2ClosedStreams()
        closed.peerOpened(7, after: .rootStream)
        #expect(closed.wasSkipped(1) && closed.wasSkipped(5) && !closed.wasSkipped(7) && !closed.wasSkipped(2))
        closed.peerOpened(9, after: 7)
        #expect(!closed.wasSkipped(9))
        closed.peerClosed(7, .endStream)
        closed.peerClosed(9, .reset)
        #expect(closed.peerEnding(of: 7) == .endStream && closed.peerEnding(of: 9) == .reset)
        #expect(closed.peerEnding(of: 11) == nil)
    }

    /// Bounded: the oldest are forgotten, and a forgotten stream is treated leniently.
    @Test func forgetsTheOldestBeyondItsCapacity() {
        var closed = HTTP2ClosedStreams()
        for index in 0...HTTP2ClosedStreams.peerClosedCapacity {
            closed.peerClosed(HTTP2StreamID(Int32(2 * index + 1)), .endStream)
        }
        #expect(closed.peerEnding(of: 1) == nil)
        #expect(closed.peerEnding(of: 3) == .endStream)
    }
}

@Suite struct HPACKFieldEncoderTests {
    private func roundTrip(_ fields: [(String, String)], neverIndexed: Bool = false) throws -> (HPACKHeaders, Int) {
        var block = HPACKHeaders()
        for (name, value) in fields {
            block.add(name: name, value: value, indexing: neverIndexed ? .neverIndexed : .indexable)
        }
        var encoder = HPACKFieldEncoder()
        var buffer = ByteBuffer()
        encoder.encode(block, into: &buffer)
        let length = buffer.readableBytes
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        return (try decoder.decodeHeaders(from: &buffer), length)
    }

    /// Every entry of RFC 7541's static table, and fields that are not in it, decode back as they were.
    @Test func everyStaticEntryAndLiteralsRoundTrip() throws {
        let fields = HPACKStaticTable.entries.map { ($0.name, $0.value) }
            + [("x-request-id", "a4f1"), (":status", "201"), ("content-type", "application/grpc"), ("x-long", String(repeating: "z", count: 300))]
        let (decoded, _) = try roundTrip(fields)
        #expect(decoded.map(\.name) == fields.map(\.0))
        #expect(decoded.map(\.value) == fields.map(\.1))
    }

    @Test func wholeStaticEntriesAreOneByte() throws {
        let (_, length) = try roundTrip([(":method", "GET"), (":status", "200"), (":path", "/")])
        #expect(length == 1 + 3)  // the table size update, then one byte per field
    }

    @Test func neverIndexedFieldsStaySo() throws {
        let (decoded, _) = try roundTrip([("authorization", "secret"), ("x-token", "t")], neverIndexed: true)
        #expect(decoded.map(\.indexable) == [.neverIndexed, .neverIndexed])
    }
}
