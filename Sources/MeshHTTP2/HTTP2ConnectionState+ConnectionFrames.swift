import NIOCore
import NIOHPACK
import NIOHTTP2

/// The peer's frames about the connection itself (SETTINGS, PING, GOAWAY,
/// WINDOW_UPDATE) and about a stream's life apart from its content
/// (PRIORITY, RST_STREAM).
extension HTTP2ConnectionState {
    /// Priority signals are ignored (RFC 9113 section 5.3.2), but a stream
    /// may not depend on itself (section 5.3.1): a stream error when the
    /// stream was opened; on an idle one, which cannot be reset, the
    /// connection's (section 5.4.1 allows treating a stream error so).
    mutating func readPriority(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
        throws(HTTP2ConnectionError) {
        try requireStream(header)
        guard header.length == 5, let dependency = readDependency(&payload) else {
            throw HTTP2ConnectionError(.frameSizeError, "a PRIORITY frame not 5 bytes long")
        }
        guard dependency == header.streamID else { return }
        if isIdle(header.streamID) {
            throw HTTP2ConnectionError(.protocolError, "PRIORITY making stream \(header.streamID) depend on itself")
        }
        try streamError(header.streamID, .protocolError)
    }

    mutating func readReset(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
        failBlocked(state)
        let frame = HTTP2Frame(streamID: header.streamID, payload: .rstStream(HTTP2ErrorCode(networkCode: Int(code))))
        deliver(frame)
    }

    mutating func readSettings(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
        try countControlFrame()
        var ack = outBuffer()
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
                sendBlocked()
            }
        }
        if let maxConcurrentStreams {
            let settings = [HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams)]
            deliver(HTTP2Frame(streamID: .rootStream, payload: .settings(.settings(settings))))
        }
    }

    mutating func readPing(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
        throws(HTTP2ConnectionError) {
        try requireConnection(header)
        guard header.length == 8 else { throw HTTP2ConnectionError(.frameSizeError, "a PING frame not 8 bytes long") }
        guard !header.has(HTTP2Wire.Flag.ack) else { return }
        try countControlFrame()
        var pong = outBuffer()
        pong.writeHTTP2FrameHeader(length: 8, type: HTTP2Wire.FrameType.ping, flags: HTTP2Wire.Flag.ack, streamID: .rootStream)
        pong.writeBuffer(&payload)
        out = pong
        answeredWhileReading = true
    }

    mutating func readGoAway(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
        deliver(frame)
    }

    mutating func readWindowUpdate(_ header: HTTP2FrameHeader, _ payload: inout ByteBuffer)
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
            sendBlocked()
            return
        }
        guard let index = streams.index(forKey: header.streamID) else {
            if isIdle(header.streamID) {
                throw HTTP2ConnectionError(.protocolError, "WINDOW_UPDATE on stream \(header.streamID), never opened")
            }
            return
        }
        guard increment > 0 else {
            try streamError(header.streamID, .protocolError)
            return
        }
        streams.values[index].sendWindow += increment
        guard streams.values[index].sendWindow <= HTTP2Wire.maxWindowSize else {
            try streamError(header.streamID, .flowControlError)
            return
        }
        if !streams.values[index].blocked.isEmpty {
            sendBlocked(of: header.streamID)
            if streams[header.streamID]?.blocked.isEmpty ?? true {
                blockedStreams.removeAll { $0 == header.streamID }
            }
            answeredWhileReading = true
        }
    }

    /// A frame the codec answers or sends on its own while reading. A peer
    /// that provokes them but never reads the answers fails the connection
    /// after `maxUnreadControlFrames` instead of growing its buffer.
    mutating func countControlFrame() throws(HTTP2ConnectionError) {
        guard !peerIsReading else {
            unreadControlFrames = 0
            return
        }
        unreadControlFrames += 1
        guard unreadControlFrames <= Self.maxUnreadControlFrames else {
            throw HTTP2ConnectionError(.enhanceYourCalm, "frames to answer while not reading the answers")
        }
    }
}
