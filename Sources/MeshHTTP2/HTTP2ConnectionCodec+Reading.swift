import NIOCore
import NIOHPACK
import NIOHTTP2

/// Frames from the peer: parsed, checked against RFC 9113's rules for the
/// connection and stream states, and passed on as `HTTP2Frame`s.
extension HTTP2ConnectionCodec {
    package func readFrames(from buffer: inout ByteBuffer, _ context: ChannelHandlerContext) throws(HTTP2ConnectionError) {
        if awaitingPreface {
            // Checked as far as it has arrived: a wrong start is answered at once.
            let length = HTTP2Wire.clientPreface.count
            let arrived = min(buffer.readableBytes, length)
            guard buffer.readableBytesView.prefix(arrived).elementsEqual(HTTP2Wire.clientPreface.prefix(arrived)) else {
                throw HTTP2ConnectionError(.protocolError, "the connection did not start with the HTTP/2 preface")
            }
            guard arrived == length else { return }
            buffer.moveReaderIndex(forwardBy: length)
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

    private func read(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
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
        case HTTP2Wire.FrameType.priority: try readPriority(header, &payload, context)
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

    private func requireStream(_ header: HTTP2FrameHeader) throws(HTTP2ConnectionError) {
        guard header.streamID != .rootStream else {
            throw HTTP2ConnectionError(.protocolError, "a stream's frame on stream 0")
        }
    }

    private func requireConnection(_ header: HTTP2FrameHeader) throws(HTTP2ConnectionError) {
        guard header.streamID == .rootStream else {
            throw HTTP2ConnectionError(.protocolError, "a connection's frame on stream \(header.streamID)")
        }
    }

    /// Removes the padding of a PADDED frame; the number of padding bytes, or nil.
    private func stripPadding(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
        throws(HTTP2ConnectionError) -> Int? {
        guard header.has(HTTP2Wire.Flag.padded) else { return nil }
        guard let padding = payload.readInteger(as: UInt8.self), Int(padding) <= payload.readableBytes else {
            throw HTTP2ConnectionError(.protocolError, "padding longer than its frame")
        }
        payload.moveWriterIndex(to: payload.writerIndex - Int(padding))
        return Int(padding)
    }

    /// The stream a PRIORITY block (of a HEADERS or PRIORITY frame) makes the stream depend on.
    private func readDependency(_ payload: inout ByteBuffer) -> HTTP2StreamID? {
        guard let raw = payload.readInteger(as: UInt32.self), payload.readInteger(as: UInt8.self) != nil else {
            return nil
        }
        return HTTP2StreamID(Int32(bitPattern: raw & 0x7FFF_FFFF))
    }

    /// Priority signals are ignored (RFC 9113 section 5.3.2), but a stream
    /// may not depend on itself (section 5.3.1): a stream error when the
    /// stream was opened; on an idle one, which cannot be reset, the
    /// connection's (section 5.4.1 allows treating a stream error so).
    private func readPriority(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try requireStream(header)
        guard header.length == 5, let dependency = readDependency(&payload) else {
            throw HTTP2ConnectionError(.frameSizeError, "a PRIORITY frame not 5 bytes long")
        }
        guard dependency == header.streamID else { return }
        if isIdle(header.streamID) {
            throw HTTP2ConnectionError(.protocolError, "PRIORITY making stream \(header.streamID) depend on itself")
        }
        try streamError(header.streamID, .protocolError, context)
    }

    /// A frame on a stream that is neither idle nor open (RFC 9113 section
    /// 5.1, "closed"): the peer's error when it had closed the stream
    /// itself; dropped (false) when the stream may be one we reset, whose
    /// peer could not know yet. True when it was answered.
    private func frameOnClosedStream(_ id: HTTP2StreamID, _ kind: String, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) -> Bool {
        switch closedStreams.peerEnding(of: id) {
        case .endStream:
            throw HTTP2ConnectionError(.streamClosed, "\(kind) on stream \(id) after its END_STREAM")
        case .reset:
            try streamError(id, .streamClosed, context)
            return true
        case nil:
            guard closedStreams.wasSkipped(id) else { return false }
            throw HTTP2ConnectionError(.protocolError, "\(kind) on stream \(id), lower than a stream already opened")
        }
    }

    /// The peer reset a stream, or we did for a stream error: counted against `HTTP2FloodGuard`.
    private func countReset() throws(HTTP2ConnectionError) {
        guard floodGuard.recordReset() else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "too many streams reset in a short time")
        }
    }

    /// A stream error found while reading: RST_STREAM, and the handler hears the stream closed.
    private func streamError(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try countReset()
        try countControlFrame(context)
        onPeerError?(code, false)
        writeReset(id, code, context)
        answeredWhileReading = true
    }

    private func readData(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try requireStream(header)
        let padding = try stripPadding(header, &payload)
        let length = header.length
        let endStream = header.has(HTTP2Wire.Flag.endStream)
        guard floodGuard.recordData(length: length, endStream: endStream) else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "empty DATA frames in a row")
        }
        connectionReceiveWindow -= length
        guard connectionReceiveWindow >= 0 else {
            throw HTTP2ConnectionError(.flowControlError, "DATA beyond the connection's window")
        }
        guard let index = streams.index(forKey: header.streamID), !streams.values[index].remoteEnded else {
            if isIdle(header.streamID) {
                throw HTTP2ConnectionError(.protocolError, "DATA on stream \(header.streamID), never opened")
            }
            // A stream already closed or reset: the bytes go nowhere, the
            // connection's credit comes back once the read completes.
            droppedDataCredit += length
            if streams[header.streamID] != nil {
                try streamError(header.streamID, .streamClosed, context)  // half-closed (remote)
            } else {
                _ = try frameOnClosedStream(header.streamID, "DATA", context)
            }
            return
        }
        streams.values[index].receiveWindow -= length
        guard streams.values[index].receiveWindow >= 0 else {
            droppedDataCredit += length
            try streamError(header.streamID, .flowControlError, context)
            return
        }
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

    private func readHeaders(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try requireStream(header)
        _ = try stripPadding(header, &payload)
        var dependsOnItself = false
        if header.has(HTTP2Wire.Flag.priority) {
            guard let dependency = readDependency(&payload) else {
                throw HTTP2ConnectionError(.protocolError, "HEADERS too short for its priority")
            }
            dependsOnItself = dependency == header.streamID
        }
        let endStream = header.has(HTTP2Wire.Flag.endStream)
        if header.has(HTTP2Wire.Flag.endHeaders) {
            try headerBlockComplete(
                header.streamID, endStream: endStream, dependsOnItself: dependsOnItself, &payload, context)
        } else {
            var fragments = context.channel.allocator.buffer(capacity: payload.readableBytes * 2)
            fragments.writeBuffer(&payload)
            headerBlock = PartialHeaderBlock(
                streamID: header.streamID, endStream: endStream, dependsOnItself: dependsOnItself,
                fragments: fragments, frames: 1)
        }
    }

    private func readContinuation(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
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
            try headerBlockComplete(
                partial.streamID, endStream: partial.endStream, dependsOnItself: partial.dependsOnItself,
                &partial.fragments, context)
        } else {
            headerBlock = partial
        }
    }

    private func headerBlockComplete(
        _ id: HTTP2StreamID, endStream: Bool, dependsOnItself: Bool, _ block: inout ByteBuffer,
        _ context: ChannelHandlerContext
    ) throws(HTTP2ConnectionError) {
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
                try streamError(id, .streamClosed, context)  // half-closed (remote)
                return
            }
            guard !dependsOnItself else {
                try streamError(id, .protocolError, context)
                return
            }
            guard endStream || role == .client else {
                try streamError(id, .protocolError, context)  // a second block must end the request
                return
            }
            streams.values[index].remoteEnded = endStream
            context.fireChannelRead(wrapInboundOut(frame))
            if endStream {
                closeIfEnded(id, context)
            }
            return
        }
        guard role == .server, id.isClientInitiated, id > lastPeerStreamID else {
            if isIdle(id) {
                throw HTTP2ConnectionError(.protocolError, "HEADERS on stream \(id), which we did not open")
            }
            // A closed stream. Unless its peer closed it, the peer may have
            // sent this before our RST_STREAM reached it (RFC 9113 section
            // 5.4.2): the block was decoded, the fields go nowhere.
            _ = try frameOnClosedStream(id, "HEADERS", context)
            return
        }
        closedStreams.peerOpened(id, after: lastPeerStreamID)
        lastPeerStreamID = id
        guard !dependsOnItself else {
            try streamError(id, .protocolError, context)
            return
        }
        if let max = local.maxConcurrentStreams, streams.count >= max {
            try streamError(id, .refusedStream, context)
            return
        }
        var state = StreamState(sendWindow: remoteInitialWindowSize, receiveWindow: local.initialWindowSize)
        state.remoteEnded = endStream
        streams[id] = state
        context.fireChannelRead(wrapInboundOut(frame))
    }

    private func readReset(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
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
        closedStreams.peerClosed(header.streamID, .reset)
        if !resetWhenSent.isEmpty {
            resetWhenSent.remove(header.streamID)
        }
        try countReset()
        Self.failBlocked(state)
        let frame = HTTP2Frame(streamID: header.streamID, payload: .rstStream(HTTP2ErrorCode(networkCode: Int(code))))
        context.fireChannelRead(wrapInboundOut(frame))
    }

    private func readSettings(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try requireConnection(header)
        if header.has(HTTP2Wire.Flag.ack) {
            guard header.length == 0 else {
                throw HTTP2ConnectionError(.frameSizeError, "a SETTINGS ack with a payload")
            }
            return
        }
        guard header.length % 6 == 0 else {
            throw HTTP2ConnectionError(.frameSizeError, "a SETTINGS frame not a multiple of 6 bytes long")
        }
        receivedSettings = true
        var maxConcurrentStreams: Int?
        var initialWindowSize: Int?
        while let identifier = payload.readInteger(as: UInt16.self), let raw = payload.readInteger(as: UInt32.self) {
            let value = Int(raw)
            switch identifier {
            case HTTP2Wire.Setting.enablePush:
                // RFC 9113 section 6.5.2: only 0 or 1, and a server may not ask for push.
                guard value == 0 || (value == 1 && role == .server) else {
                    throw HTTP2ConnectionError(.protocolError, "SETTINGS_ENABLE_PUSH \(value)")
                }
            case HTTP2Wire.Setting.maxConcurrentStreams:
                maxConcurrentStreams = value
            case HTTP2Wire.Setting.initialWindowSize:
                guard value <= HTTP2Wire.maxWindowSize else {
                    throw HTTP2ConnectionError(.flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
                }
                initialWindowSize = value
            case HTTP2Wire.Setting.maxFrameSize:
                guard value >= HTTP2Wire.defaultMaxFrameSize, value <= HTTP2Wire.maxAllowedFrameSize else {
                    throw HTTP2ConnectionError(.protocolError, "SETTINGS_MAX_FRAME_SIZE out of range")
                }
                remoteMaxFrameSize = value
            default:
                break  // table size: our encoder uses no dynamic table; list size: advisory
            }
        }
        try countControlFrame(context)
        var ack = outBuffer(context)
        ack.writeHTTP2FrameHeader(length: 0, type: HTTP2Wire.FrameType.settings, flags: HTTP2Wire.Flag.ack, streamID: .rootStream)
        out = ack
        answeredWhileReading = true
        if let initialWindowSize {
            // Only the last value counts, so a frame repeating it costs one pass over the streams.
            let delta = initialWindowSize - remoteInitialWindowSize
            remoteInitialWindowSize = initialWindowSize
            for index in streams.indices {
                streams.values[index].sendWindow += delta
                guard streams.values[index].sendWindow <= HTTP2Wire.maxWindowSize else {
                    throw HTTP2ConnectionError(.flowControlError, "a stream's window above 2^31-1")
                }
            }
            if delta > 0 {
                sendBlocked(context)
            }
        }
        if let maxConcurrentStreams {
            let settings = [HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams)]
            context.fireChannelRead(wrapInboundOut(HTTP2Frame(streamID: .rootStream, payload: .settings(.settings(settings)))))
        }
    }

    private func readPing(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
        try requireConnection(header)
        guard header.length == 8 else { throw HTTP2ConnectionError(.frameSizeError, "a PING frame not 8 bytes long") }
        guard !header.has(HTTP2Wire.Flag.ack) else { return }
        try countControlFrame(context)
        var pong = outBuffer(context)
        pong.writeHTTP2FrameHeader(length: 8, type: HTTP2Wire.FrameType.ping, flags: HTTP2Wire.Flag.ack, streamID: .rootStream)
        pong.writeBuffer(&payload)
        out = pong
        answeredWhileReading = true
    }

    private func readGoAway(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
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

    private func readWindowUpdate(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer, _ context: ChannelHandlerContext)
        throws(HTTP2ConnectionError) {
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
            try streamError(header.streamID, .protocolError, context)
            return
        }
        streams.values[index].sendWindow += increment
        guard streams.values[index].sendWindow <= HTTP2Wire.maxWindowSize else {
            try streamError(header.streamID, .flowControlError, context)
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

    /// A frame the codec answers or sends on its own while reading. A peer
    /// that provokes them but never reads the answers fails the connection
    /// after `maxUnreadControlFrames` instead of growing its buffer.
    private func countControlFrame(_ context: ChannelHandlerContext) throws(HTTP2ConnectionError) {
        guard !context.channel.isWritable else {
            unreadControlFrames = 0
            return
        }
        unreadControlFrames += 1
        guard unreadControlFrames <= Self.maxUnreadControlFrames else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "frames to answer while not reading the answers")
        }
    }
}
