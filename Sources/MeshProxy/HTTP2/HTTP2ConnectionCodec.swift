import NIOCore
import NIOHPACK
import NIOHTTP2

/// The SETTINGS one side of a connection sends, and the limits it holds the peer to.
struct HTTP2LocalSettings {
    /// Streams the peer may have open at once (servers); nil sends no limit.
    var maxConcurrentStreams: Int?
    /// Each stream's receive window.
    var initialWindowSize: Int
    /// The largest decoded header list accepted; beyond it, the connection fails.
    var maxHeaderListSize: Int
    /// Clients send 0: SwiftMesh never accepts server push.
    var disablePush = false
}

/// SwiftMesh's own HTTP/2 connection layer (RFC 9113), for both sides of
/// the proxy: bytes in, `HTTP2Frame`s to the connection handler behind it;
/// `HTTP2Frame`s from that handler, bytes out. It replaces NIOHTTP2's
/// handler on the data path because a proxied request crosses two HTTP/2
/// connections and pays their framing four times: NIOHTTP2's general
/// state machine, validation and HPACK encoder were about half of the
/// proxy's CPU per h2c request (see docs/benchmarks.md).
///
/// What it keeps per connection: the peer's SETTINGS, both flow-control
/// windows per stream and for the connection, which streams are open and
/// which side ended them, and the HPACK decoder's state. What it leaves to
/// the handler: stream semantics (`HTTP2HeaderMapping` validates fields,
/// `HTTP2Stream` checks body lengths and returns receive credit).
///
/// It answers SETTINGS and PING itself, holds DATA that the peer's window
/// cannot take yet (in order, with any trailers behind it) and sends it as
/// WINDOW_UPDATEs arrive. A stream closes when both sides ended it or
/// either reset it; the handler hears of a close it did not see as a
/// frame through `StreamClosedEvent`, as with NIOHTTP2. A protocol
/// violation of the whole connection is answered with GOAWAY and a close;
/// of one stream, with RST_STREAM. A GOAWAY for an error carries the
/// rule the peer broke as its debug data.
///
/// Frames written between two flushes are encoded into one buffer, so a
/// batch of responses leaves in one write; DATA payloads above
/// `inlineDataLimit` are passed on as they are instead of copied.
final class HTTP2ConnectionCodec: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = ByteBuffer

    enum Role {
        case server
        case client
    }

    /// DATA payloads up to this size are copied into the frame buffer; larger ones are written as they are.
    static let inlineDataLimit = 4096
    /// A header block may span this many CONTINUATION frames at most.
    static let maxContinuationFrames = 64
    /// Frames we must answer (PING, SETTINGS) that may wait unsent while the peer does not read.
    static let maxUnreadControlFrames = 1000

    private struct StreamState {
        var sendWindow: Int
        var receiveWindow: Int
        /// The handler ended its side (the end may still wait in `blocked`).
        var localEnded = false
        var remoteEnded = false
        /// What waits for the peer's window, in order; empty for nearly every stream.
        var blocked = CircularBuffer<BlockedWrite>(initialCapacity: 0)
    }

    private enum BlockedWrite {
        case data(ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?)
        case trailers(HPACKHeaders, promise: EventLoopPromise<Void>?)
    }

    /// A header block whose CONTINUATION frames are still arriving.
    private struct PartialHeaderBlock {
        var streamID: HTTP2StreamID
        var endStream: Bool
        var fragments: ByteBuffer
        var frames: Int
    }

    private let role: Role
    private let local: HTTP2LocalSettings

    private var streams: [HTTP2StreamID: StreamState] = [:]
    /// Streams with writes waiting for window, in the order they blocked.
    private var blockedStreams: [HTTP2StreamID] = []
    /// The highest stream the peer opened (servers) or we opened (clients).
    private var lastPeerStreamID = HTTP2StreamID.rootStream
    private var lastLocalStreamID = HTTP2StreamID.rootStream

    private var remoteInitialWindowSize = HTTP2Wire.defaultInitialWindowSize
    private var remoteMaxFrameSize = HTTP2Wire.defaultMaxFrameSize
    private var connectionSendWindow = HTTP2Wire.defaultInitialWindowSize
    private var connectionReceiveWindow = HTTP2Wire.defaultInitialWindowSize

    private var decoder: HPACKDecoder
    private var encoder = HPACKFieldEncoder()

    private var unread: ByteBuffer?
    private var awaitingPreface: Bool
    private var receivedSettings = false
    private var headerBlock: PartialHeaderBlock?
    private var failed = false

    /// Frames encoded since the last write down the pipeline, and the promises they carry.
    private var out: ByteBuffer?
    private var outPromises: [EventLoopPromise<Void>] = []
    /// Frames the codec itself queued while reading (SETTINGS and PING
    /// acknowledgements, resets): flushed when the read completes.
    private var answeredWhileReading = false
    private var unreadControlFrames = 0

    init(role: Role, settings: HTTP2LocalSettings) {
        self.role = role
        local = settings
        awaitingPreface = role == .server
        decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        decoder.maxHeaderListSize = settings.maxHeaderListSize
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            start(context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private var started = false

    /// The client's preface, then our SETTINGS (RFC 9113 section 3.4).
    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        var buffer = outBuffer(context)
        if role == .client {
            buffer.writeBytes(HTTP2Wire.clientPreface)
        }
        var settings: [(UInt16, Int)] = [(HTTP2Wire.Setting.initialWindowSize, local.initialWindowSize),
                                         (HTTP2Wire.Setting.maxHeaderListSize, local.maxHeaderListSize)]
        if let max = local.maxConcurrentStreams {
            settings.append((HTTP2Wire.Setting.maxConcurrentStreams, max))
        }
        if local.disablePush {
            settings.append((HTTP2Wire.Setting.enablePush, 0))
        }
        buffer.writeHTTP2FrameHeader(
            length: settings.count * 6, type: HTTP2Wire.FrameType.settings, flags: 0, streamID: .rootStream)
        for (identifier, value) in settings {
            buffer.writeInteger(identifier)
            buffer.writeInteger(UInt32(value))
        }
        out = buffer
        writeOut(context)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPendingWrites()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failPendingWrites()
    }

    private func failPendingWrites() {
        for promise in outPromises {
            promise.fail(ChannelError.ioOnClosedChannel)
        }
        outPromises.removeAll()
        out = nil
        for id in blockedStreams {
            streams[id].map(Self.failBlocked)
        }
        blockedStreams.removeAll()
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var buffer = unwrapInboundIn(data)
        if var earlier = unread {
            unread = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        do {
            try readFrames(from: &buffer, context)
        } catch let error as HTTP2ConnectionError {
            fail(error, context)
            return
        } catch {
            fail(HTTP2ConnectionError(.internalError, "\(error)"), context)
            return
        }
        if buffer.readableBytes > 0 {
            unread = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if answeredWhileReading {
            answeredWhileReading = false
            writeOut(context)
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func readFrames(from buffer: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        if awaitingPreface {
            let length = HTTP2Wire.clientPreface.count
            guard buffer.readableBytes >= length else { return }
            guard buffer.readBytes(length: length) == HTTP2Wire.clientPreface else {
                throw HTTP2ConnectionError(.protocolError, "the connection did not start with the HTTP/2 preface")
            }
            awaitingPreface = false
        }
        while !failed, let length = buffer.peekHTTP2FrameLength() {
            guard length <= HTTP2Wire.defaultMaxFrameSize else {
                throw HTTP2ConnectionError(.frameSizeError, "a frame of \(length) bytes, above SETTINGS_MAX_FRAME_SIZE")
            }
            guard buffer.readableBytes >= HTTP2Wire.frameHeaderLength + length,
                  let header = buffer.readHTTP2FrameHeader(), var payload = buffer.readSlice(length: length)
            else { return }
            try read(header, &payload, context)
        }
    }

    private func read(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        if !receivedSettings {
            guard header.type == HTTP2Wire.FrameType.settings, !header.has(HTTP2Wire.Flag.ack) else {
                throw HTTP2ConnectionError(.protocolError, "the first frame was not SETTINGS")
            }
        }
        if let partial = headerBlock,
           header.type != HTTP2Wire.FrameType.continuation || header.streamID != partial.streamID {
            throw HTTP2ConnectionError(.protocolError, "a header block was interrupted before END_HEADERS")
        }
        switch header.type {
        case HTTP2Wire.FrameType.data: try readData(header, &payload, context)
        case HTTP2Wire.FrameType.headers: try readHeaders(header, &payload, context)
        case HTTP2Wire.FrameType.continuation: try readContinuation(header, &payload, context)
        case HTTP2Wire.FrameType.priority:
            try requireStream(header)
            guard header.length == 5 else { throw HTTP2ConnectionError(.frameSizeError, "a PRIORITY frame not 5 bytes long") }
        case HTTP2Wire.FrameType.rstStream: try readReset(header, &payload, context)
        case HTTP2Wire.FrameType.settings: try readSettings(header, &payload, context)
        case HTTP2Wire.FrameType.pushPromise:
            throw HTTP2ConnectionError(.protocolError, "PUSH_PROMISE, and push is not enabled")
        case HTTP2Wire.FrameType.ping: try readPing(header, &payload, context)
        case HTTP2Wire.FrameType.goAway: try readGoAway(header, &payload, context)
        case HTTP2Wire.FrameType.windowUpdate: try readWindowUpdate(header, &payload, context)
        default:
            break  // RFC 9113 section 4.1: unknown frame types are ignored
        }
    }

    private func requireStream(_ header: HTTP2FrameHeader) throws {
        guard header.streamID != .rootStream else {
            throw HTTP2ConnectionError(.protocolError, "a stream's frame on stream 0")
        }
    }

    private func requireConnection(_ header: HTTP2FrameHeader) throws {
        guard header.streamID == .rootStream else {
            throw HTTP2ConnectionError(.protocolError, "a connection's frame on stream \(header.streamID)")
        }
    }

    /// A stream ID neither side has opened yet (RFC 9113 section 5.1, "idle").
    private func isIdle(_ id: HTTP2StreamID) -> Bool {
        switch role {
        case .server: !id.isClientInitiated || id > lastPeerStreamID
        case .client: !id.isClientInitiated || id > lastLocalStreamID
        }
    }

    /// Removes the padding of a PADDED frame; the number of padding bytes, or nil.
    private func stripPadding(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer) throws -> Int? {
        guard header.has(HTTP2Wire.Flag.padded) else { return nil }
        guard let padding = payload.readInteger(as: UInt8.self), Int(padding) <= payload.readableBytes else {
            throw HTTP2ConnectionError(.protocolError, "padding longer than its frame")
        }
        payload.moveWriterIndex(to: payload.writerIndex - Int(padding))
        return Int(padding)
    }

    private func readData(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireStream(header)
        let padding = try stripPadding(header, &payload)
        let length = header.length
        connectionReceiveWindow -= length
        guard connectionReceiveWindow >= 0 else {
            throw HTTP2ConnectionError(.flowControlError, "DATA beyond the connection's window")
        }
        guard let index = streams.index(forKey: header.streamID), !streams.values[index].remoteEnded else {
            if isIdle(header.streamID) {
                throw HTTP2ConnectionError(.protocolError, "DATA on stream \(header.streamID), never opened")
            }
            // A stream already closed or reset: the bytes go nowhere, the connection's credit comes back.
            creditConnection(length, context)
            if streams[header.streamID] != nil {
                resetStream(header.streamID, .streamClosed, context)
            }
            return
        }
        streams.values[index].receiveWindow -= length
        guard streams.values[index].receiveWindow >= 0 else {
            creditConnection(length, context)
            resetStream(header.streamID, .flowControlError, context)
            return
        }
        let endStream = header.has(HTTP2Wire.Flag.endStream)
        if endStream {
            streams.values[index].remoteEnded = true
        }
        let frame = HTTP2Frame(
            streamID: header.streamID,
            payload: .data(.init(data: .byteBuffer(payload), endStream: endStream, paddingBytes: padding)))
        context.fireChannelRead(wrapInboundOut(frame))
        if endStream {
            closeIfEnded(header.streamID, context)
        }
    }

    private func readHeaders(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireStream(header)
        _ = try stripPadding(header, &payload)
        if header.has(HTTP2Wire.Flag.priority) {
            guard payload.readSlice(length: 5) != nil else {
                throw HTTP2ConnectionError(.frameSizeError, "HEADERS too short for its priority")
            }
        }
        let endStream = header.has(HTTP2Wire.Flag.endStream)
        if header.has(HTTP2Wire.Flag.endHeaders) {
            try headerBlockComplete(header.streamID, endStream: endStream, &payload, context)
        } else {
            var fragments = context.channel.allocator.buffer(capacity: payload.readableBytes * 2)
            fragments.writeBuffer(&payload)
            headerBlock = PartialHeaderBlock(streamID: header.streamID, endStream: endStream, fragments: fragments, frames: 1)
        }
    }

    private func readContinuation(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        guard var partial = headerBlock else {
            throw HTTP2ConnectionError(.protocolError, "CONTINUATION without a header block to continue")
        }
        partial.fragments.writeBuffer(&payload)
        partial.frames += 1
        guard partial.frames <= Self.maxContinuationFrames,
              partial.fragments.readableBytes <= local.maxHeaderListSize else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "a header block in too many CONTINUATION frames")
        }
        if header.has(HTTP2Wire.Flag.endHeaders) {
            headerBlock = nil
            try headerBlockComplete(partial.streamID, endStream: partial.endStream, &partial.fragments, context)
        } else {
            headerBlock = partial
        }
    }

    private func headerBlockComplete(
        _ id: HTTP2StreamID, endStream: Bool, _ block: inout ByteBuffer, _ context: ChannelHandlerContext
    ) throws {
        // Every block is decoded, even one for a stream about to be refused:
        // the decoder's table must follow the peer's encoder.
        let fields: HPACKHeaders
        do {
            fields = try decoder.decodeHeaders(from: &block)
        } catch {
            throw HTTP2ConnectionError(.compressionError, "a header block that does not decode: \(error)")
        }
        let frame = HTTP2Frame(streamID: id, payload: .headers(.init(headers: fields, endStream: endStream)))
        if let index = streams.index(forKey: id) {
            // Trailers from a client, a response or trailers from an endpoint.
            guard !streams.values[index].remoteEnded else {
                resetStream(id, .streamClosed, context)
                return
            }
            guard endStream || role == .client else {
                resetStream(id, .protocolError, context)  // a second block must end the request
                return
            }
            streams.values[index].remoteEnded = endStream
            context.fireChannelRead(wrapInboundOut(frame))
            if endStream {
                closeIfEnded(id, context)
            }
            return
        }
        guard role == .server, id.isClientInitiated else {
            if isIdle(id) {
                throw HTTP2ConnectionError(.protocolError, "HEADERS on stream \(id), which we did not open")
            }
            return  // a response on a stream we already reset
        }
        // At or below the last stream opened: a stream already closed, whose
        // peer had sent this before our RST_STREAM reached it (RFC 9113 section 5.4.2).
        guard id > lastPeerStreamID else { return }
        lastPeerStreamID = id
        if let max = local.maxConcurrentStreams, streams.count >= max {
            resetStream(id, .refusedStream, context)
            return
        }
        var state = StreamState(sendWindow: remoteInitialWindowSize, receiveWindow: local.initialWindowSize)
        state.remoteEnded = endStream
        streams[id] = state
        context.fireChannelRead(wrapInboundOut(frame))
    }

    private func readReset(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireStream(header)
        guard header.length == 4, let code = payload.readInteger(as: UInt32.self) else {
            throw HTTP2ConnectionError(.frameSizeError, "an RST_STREAM frame not 4 bytes long")
        }
        guard let state = streams.removeValue(forKey: header.streamID) else {
            if isIdle(header.streamID) {
                throw HTTP2ConnectionError(.protocolError, "RST_STREAM on stream \(header.streamID), never opened")
            }
            return
        }
        Self.failBlocked(state)
        let frame = HTTP2Frame(streamID: header.streamID, payload: .rstStream(HTTP2ErrorCode(networkCode: Int(code))))
        context.fireChannelRead(wrapInboundOut(frame))
    }

    private func readSettings(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireConnection(header)
        if header.has(HTTP2Wire.Flag.ack) {
            guard header.length == 0 else { throw HTTP2ConnectionError(.frameSizeError, "a SETTINGS ack with a payload") }
            return
        }
        guard header.length % 6 == 0 else {
            throw HTTP2ConnectionError(.frameSizeError, "a SETTINGS frame not a multiple of 6 bytes long")
        }
        receivedSettings = true
        var forwarded: [HTTP2Setting] = []
        var windowGrew = false
        while let identifier = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
            let value = Int(value)
            switch identifier {
            case HTTP2Wire.Setting.enablePush:
                guard value <= 1 else { throw HTTP2ConnectionError(.protocolError, "SETTINGS_ENABLE_PUSH above 1") }
            case HTTP2Wire.Setting.maxConcurrentStreams:
                forwarded.append(HTTP2Setting(parameter: .maxConcurrentStreams, value: value))
            case HTTP2Wire.Setting.initialWindowSize:
                guard value <= HTTP2Wire.maxWindowSize else {
                    throw HTTP2ConnectionError(.flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
                }
                let delta = value - remoteInitialWindowSize
                remoteInitialWindowSize = value
                for index in streams.indices {
                    streams.values[index].sendWindow += delta
                    guard streams.values[index].sendWindow <= HTTP2Wire.maxWindowSize else {
                        throw HTTP2ConnectionError(.flowControlError, "a stream's window above 2^31-1")
                    }
                }
                windowGrew = windowGrew || delta > 0
            case HTTP2Wire.Setting.maxFrameSize:
                guard value >= HTTP2Wire.defaultMaxFrameSize, value <= HTTP2Wire.maxAllowedFrameSize else {
                    throw HTTP2ConnectionError(.protocolError, "SETTINGS_MAX_FRAME_SIZE out of range")
                }
                remoteMaxFrameSize = value
            default:
                break  // table size: our encoder uses no dynamic table; list size: advisory
            }
        }
        writeControl(context) { buffer in
            buffer.writeHTTP2FrameHeader(length: 0, type: HTTP2Wire.FrameType.settings, flags: HTTP2Wire.Flag.ack, streamID: .rootStream)
        }
        if windowGrew {
            sendBlocked(context)
        }
        if !forwarded.isEmpty {
            context.fireChannelRead(wrapInboundOut(HTTP2Frame(streamID: .rootStream, payload: .settings(.settings(forwarded)))))
        }
    }

    private func readPing(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireConnection(header)
        guard header.length == 8 else { throw HTTP2ConnectionError(.frameSizeError, "a PING frame not 8 bytes long") }
        guard !header.has(HTTP2Wire.Flag.ack) else { return }
        writeControl(context) { buffer in
            buffer.writeHTTP2FrameHeader(length: 8, type: HTTP2Wire.FrameType.ping, flags: HTTP2Wire.Flag.ack, streamID: .rootStream)
            buffer.writeBuffer(&payload)
        }
    }

    private func readGoAway(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        try requireConnection(header)
        guard header.length >= 8, let last = payload.readInteger(as: UInt32.self),
              let code = payload.readInteger(as: UInt32.self) else {
            throw HTTP2ConnectionError(.frameSizeError, "a GOAWAY frame shorter than 8 bytes")
        }
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(
            lastStreamID: HTTP2StreamID(Int32(bitPattern: last & 0x7FFF_FFFF)),
            errorCode: HTTP2ErrorCode(networkCode: Int(code)),
            opaqueData: payload.readableBytes > 0 ? payload : nil))
        context.fireChannelRead(wrapInboundOut(frame))
    }

    private func readWindowUpdate(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext) throws {
        guard header.length == 4, let raw = payload.readInteger(as: UInt32.self) else {
            throw HTTP2ConnectionError(.frameSizeError, "a WINDOW_UPDATE frame not 4 bytes long")
        }
        let increment = Int(raw & 0x7FFF_FFFF)
        if header.streamID == .rootStream {
            guard increment > 0 else { throw HTTP2ConnectionError(.protocolError, "a WINDOW_UPDATE of 0") }
            connectionSendWindow += increment
            guard connectionSendWindow <= HTTP2Wire.maxWindowSize else {
                throw HTTP2ConnectionError(.flowControlError, "the connection's window above 2^31-1")
            }
            sendBlocked(context)
            return
        }
        guard let index = streams.index(forKey: header.streamID) else {
            if isIdle(header.streamID) {
                throw HTTP2ConnectionError(.protocolError, "WINDOW_UPDATE on stream \(header.streamID), never opened")
            }
            return
        }
        guard increment > 0 else {
            resetStream(header.streamID, .protocolError, context)
            return
        }
        streams.values[index].sendWindow += increment
        guard streams.values[index].sendWindow <= HTTP2Wire.maxWindowSize else {
            resetStream(header.streamID, .flowControlError, context)
            return
        }
        if !streams.values[index].blocked.isEmpty {
            sendBlocked(of: header.streamID, context)
            if streams[header.streamID]?.blocked.isEmpty ?? true {
                blockedStreams.removeAll { $0 == header.streamID }
            }
            answeredWhileReading = true
        }
    }

    /// Credit for DATA that reached no stream goes back at once: the handler never saw those bytes.
    private func creditConnection(_ bytes: Int, _ context: ChannelHandlerContext) {
        guard bytes > 0 else { return }
        writeWindowUpdate(.rootStream, bytes, context)
        answeredWhileReading = true
    }

    // MARK: Writing

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            writeHeaders(frame.streamID, headers.headers, endStream: headers.endStream, promise: promise, context)
        case .data(let data):
            guard case .byteBuffer(let body) = data.data else {
                promise?.fail(ChannelError.operationUnsupported)
                return
            }
            writeData(frame.streamID, body, endStream: data.endStream, promise: promise, context)
        case .rstStream(let code):
            writeReset(frame.streamID, code, context)
            promise?.succeed()
        case .windowUpdate(let increment):
            writeWindowUpdate(frame.streamID, increment, context)
            promise?.succeed()
        case .goAway(let last, let code, _):
            var buffer = outBuffer(context)
            buffer.writeHTTP2FrameHeader(length: 8, type: HTTP2Wire.FrameType.goAway, flags: 0, streamID: .rootStream)
            buffer.writeInteger(UInt32(Int32(last)))
            buffer.writeInteger(UInt32(code.networkCode))
            out = buffer
            promise?.succeed()
        default:
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    func flush(context: ChannelHandlerContext) {
        writeOut(context)
        context.flush()
    }

    private func writeHeaders(
        _ id: HTTP2StreamID, _ fields: HPACKHeaders, endStream: Bool, promise: EventLoopPromise<Void>?,
        _ context: ChannelHandlerContext
    ) {
        if let index = streams.index(forKey: id) {
            guard !streams.values[index].localEnded else {
                promise?.fail(NIOHTTP2Errors.streamClosed(streamID: id, errorCode: .streamClosed))
                return
            }
            if endStream {
                streams.values[index].localEnded = true
            }
            if !streams.values[index].blocked.isEmpty {
                streams.values[index].blocked.append(.trailers(fields, promise: promise))
                return
            }
        } else if role == .client, id.isClientInitiated, id > lastLocalStreamID {
            lastLocalStreamID = id
            var state = StreamState(sendWindow: remoteInitialWindowSize, receiveWindow: local.initialWindowSize)
            state.localEnded = endStream
            streams[id] = state
        } else {
            promise?.fail(NIOHTTP2Errors.noSuchStream(streamID: id))
            return
        }
        encodeHeaders(id, fields, endStream: endStream, context)
        promise.map { outPromises.append($0) }
        if endStream {
            closeIfEnded(id, context)
        }
    }

    private func encodeHeaders(_ id: HTTP2StreamID, _ fields: HPACKHeaders, endStream: Bool, _ context: ChannelHandlerContext) {
        var buffer = outBuffer(context)
        let start = buffer.writerIndex
        let endFlag = endStream ? HTTP2Wire.Flag.endStream : 0
        buffer.writeHTTP2FrameHeader(
            length: 0, type: HTTP2Wire.FrameType.headers, flags: HTTP2Wire.Flag.endHeaders | endFlag, streamID: id)
        let blockStart = buffer.writerIndex
        encoder.encode(fields, into: &buffer)
        let blockLength = buffer.writerIndex - blockStart
        if blockLength <= remoteMaxFrameSize {
            buffer.setHTTP2FrameLength(blockLength, at: start)
        } else {
            // Too long for one frame: HEADERS, then CONTINUATIONs, the last with END_HEADERS.
            var block = buffer.getSlice(at: blockStart, length: blockLength)!
            buffer.moveWriterIndex(to: start)
            var type = HTTP2Wire.FrameType.headers
            var flags = endFlag
            while block.readableBytes > 0 {
                var fragment = block.readSlice(length: min(block.readableBytes, remoteMaxFrameSize))!
                if block.readableBytes == 0 {
                    flags |= HTTP2Wire.Flag.endHeaders
                }
                buffer.writeHTTP2FrameHeader(length: fragment.readableBytes, type: type, flags: flags, streamID: id)
                buffer.writeBuffer(&fragment)
                type = HTTP2Wire.FrameType.continuation
                flags = 0
            }
        }
        out = buffer
    }

    private func writeData(
        _ id: HTTP2StreamID, _ body: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?,
        _ context: ChannelHandlerContext
    ) {
        guard let index = streams.index(forKey: id), !streams.values[index].localEnded else {
            promise?.fail(NIOHTTP2Errors.streamClosed(streamID: id, errorCode: .streamClosed))
            return
        }
        if endStream {
            streams.values[index].localEnded = true
        }
        if !streams.values[index].blocked.isEmpty {
            streams.values[index].blocked.append(.data(body, endStream: endStream, promise: promise))
            return
        }
        var body = body
        let allowed = min(connectionSendWindow, streams.values[index].sendWindow)
        if body.readableBytes <= allowed {
            streams.values[index].sendWindow -= body.readableBytes
            connectionSendWindow -= body.readableBytes
            encodeData(id, &body, endStream: endStream, promise: promise, context)
            if endStream {
                closeIfEnded(id, context)
            }
            return
        }
        // The peer's window takes only part of it: that part now, the rest when WINDOW_UPDATEs come.
        if allowed > 0 {
            var part = body.readSlice(length: allowed)!
            streams.values[index].sendWindow -= allowed
            connectionSendWindow -= allowed
            encodeData(id, &part, endStream: false, promise: nil, context)
        }
        streams.values[index].blocked.append(.data(body, endStream: endStream, promise: promise))
        blockedStreams.append(id)
    }

    private func encodeData(
        _ id: HTTP2StreamID, _ body: inout ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?,
        _ context: ChannelHandlerContext
    ) {
        var buffer = outBuffer(context)
        repeat {
            var chunk = body.readSlice(length: min(body.readableBytes, remoteMaxFrameSize))!
            let last = body.readableBytes == 0
            buffer.writeHTTP2FrameHeader(
                length: chunk.readableBytes, type: HTTP2Wire.FrameType.data,
                flags: last && endStream ? HTTP2Wire.Flag.endStream : 0, streamID: id)
            if chunk.readableBytes <= Self.inlineDataLimit {
                buffer.writeBuffer(&chunk)
            } else {
                out = buffer
                writeOut(context)
                context.write(wrapOutboundOut(chunk), promise: last ? promise : nil)
                if last { return }
                buffer = outBuffer(context)
            }
        } while body.readableBytes > 0
        out = buffer
        promise.map { outPromises.append($0) }
    }

    /// Sends what the streams that waited for window can send now, in the order they blocked.
    private func sendBlocked(_ context: ChannelHandlerContext) {
        var index = 0
        while index < blockedStreams.count, connectionSendWindow > 0 {
            let id = blockedStreams[index]
            sendBlocked(of: id, context)
            if streams[id]?.blocked.isEmpty ?? true {
                blockedStreams.remove(at: index)
            } else {
                index += 1
            }
        }
        answeredWhileReading = true
    }

    private func sendBlocked(of id: HTTP2StreamID, _ context: ChannelHandlerContext) {
        guard var state = streams[id] else { return }
        while let next = state.blocked.first {
            switch next {
            case .trailers(let fields, let promise):
                state.blocked.removeFirst()
                encodeHeaders(id, fields, endStream: true, context)
                promise.map { outPromises.append($0) }
            case .data(var body, let endStream, let promise):
                let allowed = min(connectionSendWindow, state.sendWindow)
                guard allowed > 0 || body.readableBytes == 0 else {
                    streams[id] = state
                    return
                }
                let length = min(allowed, body.readableBytes)
                state.sendWindow -= length
                connectionSendWindow -= length
                if length == body.readableBytes {
                    state.blocked.removeFirst()
                    encodeData(id, &body, endStream: endStream, promise: promise, context)
                } else {
                    var part = body.readSlice(length: length)!
                    state.blocked[state.blocked.startIndex] = .data(body, endStream: endStream, promise: promise)
                    encodeData(id, &part, endStream: false, promise: nil, context)
                }
            }
        }
        streams[id] = state
        closeIfEnded(id, context)
    }

    private func writeWindowUpdate(_ id: HTTP2StreamID, _ increment: Int, _ context: ChannelHandlerContext) {
        if id == .rootStream {
            connectionReceiveWindow += increment
        } else if let index = streams.index(forKey: id), !streams.values[index].remoteEnded {
            streams.values[index].receiveWindow += increment
        } else {
            return  // the stream is done: no credit needed
        }
        var buffer = outBuffer(context)
        buffer.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.windowUpdate, flags: 0, streamID: id)
        buffer.writeInteger(UInt32(increment))
        out = buffer
    }

    private func writeReset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode, _ context: ChannelHandlerContext) {
        var buffer = outBuffer(context)
        buffer.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.rstStream, flags: 0, streamID: id)
        buffer.writeInteger(UInt32(code.networkCode))
        out = buffer
        if let state = streams.removeValue(forKey: id) {
            Self.failBlocked(state)
            context.fireUserInboundEventTriggered(StreamClosedEvent(streamID: id, reason: code))
        }
    }

    /// A stream error found while reading: RST_STREAM, and the handler hears the stream closed.
    private func resetStream(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode, _ context: ChannelHandlerContext) {
        writeReset(id, code, context)
        answeredWhileReading = true
    }

    /// A frame the codec answers itself. A peer that sends PINGs or SETTINGS
    /// but never reads the answers fails the connection after
    /// `maxUnreadControlFrames` of them instead of growing its buffer.
    private func writeControl(_ context: ChannelHandlerContext, _ encode: (inout ByteBuffer) -> Void) {
        if context.channel.isWritable {
            unreadControlFrames = 0
        } else {
            unreadControlFrames += 1
            if unreadControlFrames > Self.maxUnreadControlFrames {
                fail(HTTP2ConnectionError(.enhanceYourCalm, "control frames sent while not reading the answers"), context)
                return
            }
        }
        var buffer = outBuffer(context)
        encode(&buffer)
        out = buffer
        answeredWhileReading = true
    }

    private func closeIfEnded(_ id: HTTP2StreamID, _ context: ChannelHandlerContext) {
        guard let index = streams.index(forKey: id) else { return }
        let state = streams.values[index]
        guard state.localEnded, state.remoteEnded, state.blocked.isEmpty else { return }
        streams.remove(at: index)
        context.fireUserInboundEventTriggered(StreamClosedEvent(streamID: id, reason: nil))
    }

    private static func failBlocked(_ state: StreamState) {
        for write in state.blocked {
            switch write {
            case .data(_, _, let promise), .trailers(_, let promise):
                promise?.fail(ChannelError.ioOnClosedChannel)
            }
        }
    }

    // MARK: Buffers

    /// The buffer frames are encoded into until the next write down the pipeline.
    private func outBuffer(_ context: ChannelHandlerContext) -> ByteBuffer {
        if let buffer = out {
            out = nil
            return buffer
        }
        return context.channel.allocator.buffer(capacity: 2048)
    }

    /// Passes the encoded frames down the pipeline, with every promise they carry.
    private func writeOut(_ context: ChannelHandlerContext) {
        guard let buffer = out, buffer.readableBytes > 0 else { return }
        out = nil
        let promise: EventLoopPromise<Void>?
        switch outPromises.count {
        case 0:
            promise = nil
        case 1:
            promise = outPromises[0]
        default:
            let all = outPromises
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for each in all {
                    each.completeWith(result)
                }
            }
            promise = combined
        }
        outPromises.removeAll(keepingCapacity: true)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    // MARK: Connection errors

    /// GOAWAY with the error, then the connection closes (RFC 9113 section 5.4.1).
    private func fail(_ error: HTTP2ConnectionError, _ context: ChannelHandlerContext) {
        guard !failed else { return }
        failed = true
        // The reason goes out as the GOAWAY's debug data, for the peer's logs.
        let reason = Array(error.reason.utf8.prefix(256))
        var buffer = outBuffer(context)
        buffer.writeHTTP2FrameHeader(
            length: 8 + reason.count, type: HTTP2Wire.FrameType.goAway, flags: 0, streamID: .rootStream)
        buffer.writeInteger(UInt32(Int32(lastPeerStreamID)))
        buffer.writeInteger(UInt32(error.code.networkCode))
        buffer.writeBytes(reason)
        out = buffer
        let sent = context.eventLoop.makePromise(of: Void.self)
        outPromises.append(sent)
        writeOut(context)
        context.flush()
        sent.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
