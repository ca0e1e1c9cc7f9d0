import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import MeshHTTP2

/// `HTTP2ConnectionState` on its own: bytes and frames in, events and
/// encoded bytes out, no channel. (`HTTP2ConnectionCodecTests` drive the
/// same rules through the codec in an EmbeddedChannel.)
@Suite struct HTTP2ConnectionStateTests {
    private static let settings = HTTP2LocalSettings(
        maxConcurrentStreams: 10, initialWindowSize: 65535, maxHeaderListSize: 16384,
        headerBlockTimeout: .seconds(10))
    private let loop = EmbeddedEventLoop()

    /// A frame as a peer writes it.
    private static func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int32, _ payload: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeHTTP2FrameHeader(length: payload.count, type: type, flags: flags, streamID: HTTP2StreamID(stream))
        buffer.writeBytes(payload)
        return buffer
    }

    private static func request(_ stream: Int32, endStream: Bool = true, endHeaders: Bool = true) throws -> ByteBuffer {
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var block = ByteBuffer()
        try encoder.encode(
            headers: HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")]),
            to: &block)
        let flags = (endHeaders ? HTTP2Wire.Flag.endHeaders : 0) | (endStream ? HTTP2Wire.Flag.endStream : 0)
        return frame(HTTP2Wire.FrameType.headers, flags, stream, Array(block.readableBytesView))
    }

    /// A server past the preface and both SETTINGS, with nothing left to do.
    private static func server() -> HTTP2ConnectionState {
        var state = HTTP2ConnectionState(role: .server, settings: settings)
        _ = state.start()
        var bytes = ByteBuffer(bytes: HTTP2Wire.clientPreface)
        bytes.writeImmutableBuffer(frame(HTTP2Wire.FrameType.settings, 0, 0))
        while read(&state, &bytes).progress == .read {}
        drain(&state)
        return state
    }

    /// A server that read a request on stream 1 and wrote its response head.
    private static func serverAnswering(requestEnded: Bool = true) throws -> HTTP2ConnectionState {
        var state = Self.server()
        var head = try Self.request(1, endStream: requestEnded)
        Self.read(&state, &head)
        Self.drain(&state)
        state.writeFrame(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: [":status": "200"]))), promise: nil)
        return state
    }

    private static func drain(_ state: inout HTTP2ConnectionState) {
        while state.nextEvent() != nil {}
        while state.nextWrite(combining: { $0.first }) != nil {}
    }

    /// The frames `state` encoded since the handler last took them.
    private static func written(_ state: inout HTTP2ConnectionState) -> [HTTP2FrameHeader] {
        var bytes = ByteBuffer()
        while var write = state.nextWrite(combining: { $0.first }) {
            bytes.writeBuffer(&write.bytes)
        }
        var headers: [HTTP2FrameHeader] = []
        while let header = bytes.readHTTP2FrameHeader() {
            bytes.moveReaderIndex(forwardBy: header.length)
            headers.append(header)
        }
        return headers
    }

    private static func events(_ state: inout HTTP2ConnectionState) -> [HTTP2ConnectionState.Event] {
        var events: [HTTP2ConnectionState.Event] = []
        while let event = state.nextEvent() {
            events.append(event)
        }
        return events
    }

    private enum Progress {
        case read, needMoreBytes, failed
    }

    /// Reads one frame as the codec does: what the handler is told of it,
    /// in order (the frame `readFrame` returns, then the queued events).
    @discardableResult
    private static func read(
        _ state: inout HTTP2ConnectionState, _ bytes: inout ByteBuffer
    ) -> (progress: Progress, events: [HTTP2ConnectionState.Event]) {
        switch state.readFrame(from: &bytes) {
        case .frame(let frame): (.read, [.frame(frame)] + events(&state))
        case .frameRead: (.read, events(&state))
        case .needMoreBytes: (.needMoreBytes, events(&state))
        case .connectionFailed: (.failed, events(&state))
        }
    }

    @Test func framesAreReadOneAtATimeSoTheHandlerAnswersEachBeforeTheNext() throws {
        var state = Self.server()
        var bytes = try Self.request(1)
        bytes.writeImmutableBuffer(try Self.request(3))
        let (progress, first) = Self.read(&state, &bytes)
        #expect(progress == .read)
        #expect(first.count == 1)
        guard case .frame(let frame) = first.first else {
            Issue.record("the first request did not come out as a frame")
            return
        }
        #expect(frame.streamID == 1)
        #expect(state.streams.count == 1)
        #expect(Self.read(&state, &bytes).progress == .read)
        #expect(state.streams.count == 2)
        #expect(Self.read(&state, &bytes).progress == .needMoreBytes)
    }

    @Test func aPartialFrameWaitsForTheRestOfItsBytes() throws {
        var state = Self.server()
        let whole = try Self.request(1)
        var first = whole.getSlice(at: 0, length: 5)!
        var rest = whole.getSlice(at: 5, length: whole.readableBytes - 5)!
        #expect(Self.read(&state, &first).progress == .needMoreBytes)
        state.keepUnread(&first)
        #expect(state.isMidHeaders)
        state.received(&rest)
        #expect(Self.read(&state, &rest).progress == .read)
        #expect(!state.isMidHeaders)
    }

    @Test func dataBeyondThePeersWindowWaitsAndItsPromiseIsTheHandlersToComplete() throws {
        var state = try Self.serverAnswering()
        let promise = loop.makePromise(of: Void.self)
        var completed = false
        promise.futureResult.assumeIsolated().whenComplete { _ in completed = true }
        let body = ByteBuffer(repeating: 7, count: 70_000)
        state.writeFrame(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(body), endStream: true))), promise: promise)
        let sent = Self.written(&state)
        #expect(sent.filter { $0.type == HTTP2Wire.FrameType.data }.map(\.length).reduce(0, +) == 65535)
        #expect(state.blockedStreams == [1])
        // The client resets the stream: the held DATA is dropped, and the
        // state asks the handler to fail its promise rather than doing so.
        var reset = Self.frame(HTTP2Wire.FrameType.rstStream, 0, 1, [0, 0, 0, 8])
        let (progress, events) = Self.read(&state, &reset)
        #expect(progress == .read)
        #expect(!completed)
        #expect(events.contains { if case .completeWrite(let p, let failure) = $0 { p.futureResult === promise.futureResult && failure != nil } else { false } })
        #expect(events.contains { if case .frame(let frame) = $0, case .rstStream = frame.payload { true } else { false } })
        #expect(state.streams.isEmpty)
        promise.fail(ChannelError.ioOnClosedChannel)
    }

    @Test func heldDataGoesOutAsThePeerGivesCreditWithItsPromiseOnTheLastByte() throws {
        var state = try Self.serverAnswering()
        let promise = loop.makePromise(of: Void.self)
        let body = ByteBuffer(repeating: 7, count: 65535 + 100)
        state.writeFrame(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(body), endStream: true))), promise: promise)
        _ = Self.written(&state)
        var credit = Self.frame(HTTP2Wire.FrameType.windowUpdate, 0, 0, [0, 0, 0x10, 0])
        Self.read(&state, &credit)
        #expect(state.blockedStreams == [1])  // the stream's own window is still empty
        credit = Self.frame(HTTP2Wire.FrameType.windowUpdate, 0, 1, [0, 0, 0x10, 0])
        let afterCredit = Self.read(&state, &credit).events
        #expect(state.blockedStreams.isEmpty)
        var promises = 0
        var last: HTTP2FrameHeader?
        while var write = state.nextWrite(combining: { promises += $0.count; return $0.first }) {
            while let header = write.bytes.readHTTP2FrameHeader() {
                write.bytes.moveReaderIndex(forwardBy: header.length)
                last = header
            }
        }
        #expect(promises == 1)
        #expect(last?.length == 100)
        #expect(last?.has(HTTP2Wire.Flag.endStream) == true)
        // The client's request was ended: both sides ended, the stream closes.
        #expect(afterCredit.contains { if case .streamClosed(1, nil) = $0 { true } else { false } })
        promise.succeed()
    }

    @Test func largeDataIsPassedOnAsItIsAfterWhatWasEncodedBeforeIt() throws {
        var state = try Self.serverAnswering()
        let body = ByteBuffer(repeating: 7, count: HTTP2ConnectionState.inlineDataLimit + 1)
        state.writeFrame(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(body)))), promise: nil)
        var writes: [ByteBuffer] = []
        while let write = state.nextWrite(combining: { $0.first }) {
            writes.append(write.bytes)
        }
        // HEADERS and the DATA frame's header, then the payload untouched.
        #expect(writes.count == 2)
        #expect(writes.last?.readableBytes == body.readableBytes)
    }

    @Test func aConnectionErrorQueuesGoAwayWithTheRuleThenTheClose() {
        var state = Self.server()
        var bad = Self.frame(HTTP2Wire.FrameType.data, 0, 0, [1])
        let (progress, events) = Self.read(&state, &bad)
        #expect(progress == .failed)
        guard events.count == 2, case .peerError(let code, true) = events[0], case .close = events[1] else {
            Issue.record("expected a connection error then the close, got \(events)")
            return
        }
        #expect(code == .protocolError)
        var out = state.nextWrite(combining: { $0.first })?.bytes ?? ByteBuffer()
        let header = out.readHTTP2FrameHeader()
        #expect(header?.type == HTTP2Wire.FrameType.goAway)
        out.moveReaderIndex(forwardBy: 8)
        #expect(String(buffer: out).contains("stream 0"))
        var more = Self.frame(HTTP2Wire.FrameType.ping, 0, 0, [UInt8](repeating: 0, count: 8))
        #expect(Self.read(&state, &more).progress == .failed)
        // GOAWAY is the last frame: what the handler writes after it fails.
        let late = loop.makePromise(of: Void.self)
        state.writeFrame(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: 1)), promise: late)
        #expect(state.nextWrite(combining: { $0.first }) == nil)
        #expect(Self.events(&state).contains { if case .completeWrite(_, _?) = $0 { true } else { false } })
        late.fail(ChannelError.ioOnClosedChannel)
    }

    @Test func answersThePeerLeavesUnreadAreBounded() {
        var state = Self.server()
        state.peerIsReading = false
        var progress = Progress.read
        var events: [HTTP2ConnectionState.Event] = []
        var pings = 0
        while progress == .read && pings <= HTTP2ConnectionState.maxUnreadControlFrames + 1 {
            var ping = Self.frame(HTTP2Wire.FrameType.ping, 0, 0, [UInt8](repeating: 0, count: 8))
            (progress, events) = Self.read(&state, &ping)
            pings += 1
        }
        #expect(progress == .failed)
        #expect(pings == HTTP2ConnectionState.maxUnreadControlFrames + 1)
        #expect(events.contains { if case .peerError(.enhanceYourCalm, true) = $0 { true } else { false } })
    }

    @Test func aHeaderBlockLeftOpenIsMidHeadersAndItsTimeoutEndsTheConnection() throws {
        var state = Self.server()
        var start = try Self.request(1, endHeaders: false)
        let (progress, seen) = Self.read(&state, &start)
        #expect(progress == .read)
        #expect(state.isMidHeaders)
        #expect(seen.isEmpty)
        state.headerBlockTimedOut()
        let events = Self.events(&state)
        guard case .close = events.last else {
            Issue.record("the timeout did not close the connection: \(events)")
            return
        }
        #expect(!events.contains { if case .peerError = $0 { true } else { false } })
        #expect(Self.written(&state).map(\.type) == [HTTP2Wire.FrameType.goAway])
    }

    @Test func theConnectionsEndFailsEveryWriteStillWaiting() throws {
        var state = try Self.serverAnswering(requestEnded: false)
        let held = loop.makePromise(of: Void.self)
        let encoded = loop.makePromise(of: Void.self)
        state.writeFrame(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 10))))),
            promise: encoded)
        state.writeFrame(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 70_000))))),
            promise: held)
        state.connectionClosed()
        let failed = Self.events(&state).compactMap { event -> EventLoopFuture<Void>? in
            if case .completeWrite(let promise, _?) = event { promise.futureResult } else { nil }
        }
        #expect(failed.count == 2)
        #expect(failed.contains { $0 === held.futureResult } && failed.contains { $0 === encoded.futureResult })
        #expect(state.nextWrite(combining: { $0.first }) == nil)
        held.fail(ChannelError.ioOnClosedChannel)
        encoded.fail(ChannelError.ioOnClosedChannel)
    }
}
