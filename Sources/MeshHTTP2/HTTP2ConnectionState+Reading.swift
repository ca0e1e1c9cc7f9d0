import NIOCore
import NIOHPACK
import NIOHTTP2

/// Frames from the peer: parsed, checked against RFC 9113's rules for the
/// connection and stream states, and passed on as `HTTP2Frame`s.
extension HTTP2ConnectionState {
    /// Bytes just read from the socket, after the start of a frame left
    /// over from the read before, if any.
    package mutating func received(_ buffer: inout ByteBuffer) {
        guard var earlier = unread else { return }
        unread = nil
        earlier.writeBuffer(&buffer)
        buffer = earlier
    }

    /// Reads the next whole frame from `buffer` (after the client's preface,
    /// if it is still due); its events are queued for the handler.
    package mutating func readFrame(from buffer: inout ByteBuffer) -> ReadProgress {
        guard !failed else { return .connectionFailed }
        do throws(HTTP2ConnectionError) {
            if awaitingPreface {
                // Checked as far as it has arrived: a wrong start is answered at once.
                let length = HTTP2Wire.clientPreface.count
                let arrived = min(buffer.readableBytes, length)
                guard buffer.readableBytesView.prefix(arrived).elementsEqual(HTTP2Wire.clientPreface.prefix(arrived)) else {
                    throw HTTP2ConnectionError(.protocolError, "the connection did not start with the HTTP/2 preface")
                }
                guard arrived == length else { return .needMoreBytes }
                buffer.moveReaderIndex(forwardBy: length)
                awaitingPreface = false
            }
            guard let length = buffer.peekHTTP2FrameLength() else { return .needMoreBytes }
            guard length <= HTTP2Wire.defaultMaxFrameSize else {
                throw HTTP2ConnectionError(.frameSizeError, "a frame of \(length) bytes, above SETTINGS_MAX_FRAME_SIZE")
            }
            guard buffer.readableBytes >= HTTP2Wire.frameHeaderLength + length,
                  let header = buffer.readHTTP2FrameHeader(), var payload = buffer.readSlice(length: length)
            else { return .needMoreBytes }
            try read(header, &payload)
        } catch {
            fail(error)
        }
        if failed {
            return .connectionFailed
        }
        if let frame = frameForHandler {
            frameForHandler = nil
            return .frame(frame)
        }
        return .frameRead
    }

    /// A frame for the handler: returned by `readFrame` itself when nothing
    /// is queued before it (nearly always: one frame in, one frame out,
    /// without a trip through the queue); queued in order otherwise.
    mutating func deliver(_ frame: HTTP2Frame) {
        if events.isEmpty && frameForHandler == nil {
            frameForHandler = frame
        } else {
            events.append(.frame(frame))
        }
    }

    /// Keeps what is left of `buffer` (at most the start of one frame) for the next read.
    package mutating func keepUnread(_ buffer: inout ByteBuffer) {
        guard buffer.readableBytes > 0, !failed else { return }
        // Copied out: kept as a slice, the rest of the read's storage would
        // stay alive and grow with each append.
        var rest = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
        rest.writeBuffer(&buffer)
        unread = rest
    }

    private mutating func read(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
        case HTTP2Wire.FrameType.data: try readData(header, &payload)
        case HTTP2Wire.FrameType.headers: try readHeaders(header, &payload)
        case HTTP2Wire.FrameType.continuation: try readContinuation(header, &payload)
        case HTTP2Wire.FrameType.priority: try readPriority(header, &payload)
        case HTTP2Wire.FrameType.rstStream: try readReset(header, &payload)
        case HTTP2Wire.FrameType.settings: try readSettings(header, &payload)
        case HTTP2Wire.FrameType.pushPromise:
            throw HTTP2ConnectionError(.protocolError, "PUSH_PROMISE, and push is not enabled")
        case HTTP2Wire.FrameType.ping: try readPing(header, &payload)
        case HTTP2Wire.FrameType.goAway: try readGoAway(header, &payload)
        case HTTP2Wire.FrameType.windowUpdate: try readWindowUpdate(header, &payload)
        default:
            break  // RFC 9113 section 4.1: unknown frame types are ignored
        }
    }

    func requireStream(_ header: HTTP2FrameHeader) throws(HTTP2ConnectionError) {
        guard header.streamID != .rootStream else {
            throw HTTP2ConnectionError(.protocolError, "a stream's frame on stream 0")
        }
    }

    func requireConnection(_ header: HTTP2FrameHeader) throws(HTTP2ConnectionError) {
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
    func readDependency(_ payload: inout ByteBuffer) -> HTTP2StreamID? {
        guard let raw = payload.readInteger(as: UInt32.self), payload.readInteger(as: UInt8.self) != nil else {
            return nil
        }
        return HTTP2StreamID(Int32(bitPattern: raw & 0x7FFF_FFFF))
    }

    /// A frame on a stream that is neither idle nor open (RFC 9113 section
    /// 5.1, "closed"): the peer's error when it had closed the stream
    /// itself; dropped (false) when the stream may be one we reset, whose
    /// peer could not know yet. True when it was answered.
    private mutating func frameOnClosedStream(_ id: HTTP2StreamID, _ kind: String)
        throws(HTTP2ConnectionError) -> Bool {
        switch closedStreams.peerEnding(of: id) {
        case .endStream:
            throw HTTP2ConnectionError(.streamClosed, "\(kind) on stream \(id) after its END_STREAM")
        case .reset:
            try streamError(id, .streamClosed)
            return true
        case nil:
            guard closedStreams.wasSkipped(id) else { return false }
            throw HTTP2ConnectionError(.protocolError, "\(kind) on stream \(id), lower than a stream already opened")
        }
    }

    /// The peer reset a stream, or we did for a stream error: counted against `HTTP2FloodGuard`.
    mutating func countReset() throws(HTTP2ConnectionError) {
        guard floodGuard.recordReset() else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "too many streams reset in a short time")
        }
    }

    /// A stream error found while reading: RST_STREAM, and the handler hears the stream closed.
    mutating func streamError(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode)
        throws(HTTP2ConnectionError) {
        try countReset()
        try countControlFrame()
        events.append(.peerError(code, endedConnection: false))
        writeReset(id, code)
        answeredWhileReading = true
    }

    private mutating func readData(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
                try streamError(header.streamID, .streamClosed)  // half-closed (remote)
            } else {
                _ = try frameOnClosedStream(header.streamID, "DATA")
            }
            return
        }
        streams.values[index].receiveWindow -= length
        guard streams.values[index].receiveWindow >= 0 else {
            droppedDataCredit += length
            try streamError(header.streamID, .flowControlError)
            return
        }
        if endStream {
            streams.values[index].remoteEnded = true
        }
        let frame = HTTP2Frame(
            streamID: header.streamID,
            payload: .data(.init(data: .byteBuffer(payload), endStream: endStream, paddingBytes: padding)))
        deliver(frame)
        if endStream {
            closeIfEnded(header.streamID)
        }
    }

    private mutating func readHeaders(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
                header.streamID, endStream: endStream, dependsOnItself: dependsOnItself, &payload)
        } else {
            var fragments = ByteBufferAllocator().buffer(capacity: payload.readableBytes * 2)
            fragments.writeBuffer(&payload)
            headerBlock = PartialHeaderBlock(
                streamID: header.streamID, endStream: endStream, dependsOnItself: dependsOnItself,
                fragments: fragments, frames: 1)
        }
    }

    private mutating func readContinuation(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
                &partial.fragments)
        } else {
            headerBlock = partial
        }
    }

    private mutating func headerBlockComplete(
        _ id: HTTP2StreamID, endStream: Bool, dependsOnItself: Bool, _ block: inout ByteBuffer
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
                try streamError(id, .streamClosed)  // half-closed (remote)
                return
            }
            guard !dependsOnItself else {
                try streamError(id, .protocolError)
                return
            }
            guard endStream || role == .client else {
                try streamError(id, .protocolError)  // a second block must end the request
                return
            }
            streams.values[index].remoteEnded = endStream
            deliver(frame)
            if endStream {
                closeIfEnded(id)
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
            _ = try frameOnClosedStream(id, "HEADERS")
            return
        }
        closedStreams.peerOpened(id, after: lastPeerStreamID)
        lastPeerStreamID = id
        guard !dependsOnItself else {
            try streamError(id, .protocolError)
            return
        }
        if let max = local.maxConcurrentStreams, streams.count >= max {
            try streamError(id, .refusedStream)
            return
        }
        var state = StreamState(sendWindow: remoteInitialWindowSize, receiveWindow: local.initialWindowSize)
        state.remoteEnded = endStream
        streams[id] = state
        deliver(frame)
    }

}
