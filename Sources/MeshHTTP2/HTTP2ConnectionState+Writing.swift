import NIOCore
import NIOHPACK
import NIOHTTP2

/// Frames from the connection handler: encoded into the outgoing buffer,
/// with DATA kept within the peer's flow-control windows.
extension HTTP2ConnectionState {
    package mutating func writeFrame(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        // Gone, or failed: GOAWAY is the last frame the connection sends.
        guard !isClosed, !failed else {
            complete(promise, failure: ChannelError.ioOnClosedChannel)
            return
        }
        switch frame.payload {
        case .headers(let headers):
            writeHeaders(frame.streamID, headers.headers, endStream: headers.endStream, promise: promise)
        case .data(let data):
            guard case .byteBuffer(let body) = data.data else {
                complete(promise, failure: ChannelError.operationUnsupported)
                return
            }
            writeData(frame.streamID, body, endStream: data.endStream, promise: promise)
        case .rstStream(let code):
            if writeResetFromHandler(frame.streamID, code) {
                complete(promise, failure: nil)
            } else {
                complete(promise, failure: ChannelError.ioOnClosedChannel)
            }
        case .windowUpdate(let increment):
            writeWindowUpdate(frame.streamID, increment)
            complete(promise, failure: nil)
        case .goAway(let last, let code, _):
            var buffer = outBuffer()
            buffer.writeHTTP2FrameHeader(length: 8, type: HTTP2Wire.FrameType.goAway, flags: 0, streamID: .rootStream)
            buffer.writeInteger(UInt32(Int32(last)))
            buffer.writeInteger(UInt32(code.networkCode))
            out = buffer
            complete(promise, failure: nil)
        default:
            complete(promise, failure: ChannelError.operationUnsupported)
        }
    }

    /// A promise of the handler's, completed by the handler once this call returns.
    private mutating func complete(_ promise: EventLoopPromise<Void>?, failure: (any Error)?) {
        if let promise {
            events.append(.completeWrite(promise, failure: failure))
        }
    }

    private mutating func writeHeaders(
        _ id: HTTP2StreamID, _ fields: HPACKHeaders, endStream: Bool, promise: EventLoopPromise<Void>?
    ) {
        if let index = streams.index(forKey: id) {
            guard admit(index, endStream: endStream, promise: promise,
                        queued: .trailers(fields, endStream: endStream, promise: promise)) else { return }
        } else if role == .client, id.isClientInitiated, id > lastLocalStreamID {
            lastLocalStreamID = id
            var state = StreamState(sendWindow: remoteInitialWindowSize, receiveWindow: local.initialWindowSize)
            state.localEnded = endStream
            streams[id] = state
        } else {
            complete(promise, failure: NIOHTTP2Errors.noSuchStream(streamID: id))
            return
        }
        encodeHeaders(id, fields, endStream: endStream)
        promise.map { outPromises.append($0) }
        if endStream {
            closeIfEnded(id)
        }
    }

    /// A write on an open stream: refused once the handler ended the
    /// stream, queued behind writes already waiting for the peer's window.
    /// True when the caller sends it now.
    private mutating func admit(
        _ index: Dictionary<HTTP2StreamID, StreamState>.Index, endStream: Bool, promise: EventLoopPromise<Void>?,
        queued: @autoclosure () -> BlockedWrite
    ) -> Bool {
        guard !streams.values[index].localEnded else {
            complete(promise, failure: NIOHTTP2Errors.streamClosed(streamID: streams.keys[index], errorCode: .streamClosed))
            return false
        }
        if endStream {
            streams.values[index].localEnded = true
        }
        guard streams.values[index].blocked.isEmpty else {
            streams.values[index].blocked.append(queued())
            return false
        }
        return true
    }

    private mutating func encodeHeaders(_ id: HTTP2StreamID, _ fields: HPACKHeaders, endStream: Bool) {
        var buffer = outBuffer()
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

    private mutating func writeData(
        _ id: HTTP2StreamID, _ body: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?
    ) {
        guard let index = streams.index(forKey: id) else {
            complete(promise, failure: NIOHTTP2Errors.noSuchStream(streamID: id))
            return
        }
        guard admit(index, endStream: endStream, promise: promise,
                    queued: .data(body, endStream: endStream, promise: promise)) else { return }
        var body = body
        let allowed = min(connectionSendWindow, streams.values[index].sendWindow)
        if body.readableBytes <= allowed {
            streams.values[index].sendWindow -= body.readableBytes
            connectionSendWindow -= body.readableBytes
            encodeData(id, &body, endStream: endStream, promise: promise)
            if endStream {
                closeIfEnded(id)
            }
            return
        }
        // The peer's window takes only part of it: that part now, the rest when WINDOW_UPDATEs come.
        if allowed > 0 {
            var part = body.readSlice(length: allowed)!
            streams.values[index].sendWindow -= allowed
            connectionSendWindow -= allowed
            encodeData(id, &part, endStream: false, promise: nil)
        }
        streams.values[index].blocked.append(.data(body, endStream: endStream, promise: promise))
        blockedStreams.append(id)
    }

    private mutating func encodeData(
        _ id: HTTP2StreamID, _ body: inout ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?
    ) {
        var buffer = outBuffer()
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
                cutWrite(then: chunk, promise: last ? promise : nil)
                if last { return }
                buffer = outBuffer()
            }
        } while body.readableBytes > 0
        out = buffer
        promise.map { outPromises.append($0) }
    }

    /// Sends what the streams that waited for window can send now, in the order they blocked.
    package mutating func sendBlocked() {
        var index = 0
        while index < blockedStreams.count, connectionSendWindow > 0 {
            let id = blockedStreams[index]
            sendBlocked(of: id)
            if streams[id]?.blocked.isEmpty ?? true {
                blockedStreams.remove(at: index)
            } else {
                index += 1
            }
        }
        answeredWhileReading = true
    }

    package mutating func sendBlocked(of id: HTTP2StreamID) {
        guard var state = streams[id] else { return }
        while let next = state.blocked.first {
            switch next {
            case .trailers(let fields, let endStream, let promise):
                state.blocked.removeFirst()
                encodeHeaders(id, fields, endStream: endStream)
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
                    encodeData(id, &body, endStream: endStream, promise: promise)
                } else {
                    var part = body.readSlice(length: length)!
                    state.blocked[state.blocked.startIndex] = .data(body, endStream: endStream, promise: promise)
                    encodeData(id, &part, endStream: false, promise: nil)
                }
            }
        }
        streams[id] = state
        if state.blocked.isEmpty, !resetWhenSent.isEmpty, resetWhenSent.remove(id) != nil {
            writeReset(id, .noError)
        } else {
            closeIfEnded(id)
        }
    }

    package mutating func writeWindowUpdate(_ id: HTTP2StreamID, _ increment: Int) {
        if id == .rootStream {
            connectionReceiveWindow += increment
        } else if let index = streams.index(forKey: id), !streams.values[index].remoteEnded {
            streams.values[index].receiveWindow += increment
        } else {
            return  // the stream is done: no credit needed
        }
        var buffer = outBuffer()
        buffer.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.windowUpdate, flags: 0, streamID: id)
        buffer.writeInteger(UInt32(increment))
        out = buffer
    }

    /// RST_STREAM for a stream that was opened; the handler hears the
    /// stream closed if it was still open. A stream never opened gets
    /// nothing: resetting it would be a protocol error of ours.
    package mutating func writeReset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode) {
        guard !isIdle(id) else { return }
        var buffer = outBuffer()
        buffer.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.rstStream, flags: 0, streamID: id)
        buffer.writeInteger(UInt32(code.networkCode))
        out = buffer
        if !resetWhenSent.isEmpty {
            resetWhenSent.remove(id)
        }
        if let state = streams.removeValue(forKey: id) {
            if state.remoteEnded {
                closedStreams.peerClosed(id, .endStream)
            }
            failBlocked(state)
            events.append(.streamClosed(id, reason: code))
        }
    }

    /// A reset a server's handler sends for a malformed request
    /// (PROTOCOL_ERROR) is the client's doing: it counts toward
    /// `HTTP2FloodGuard`'s limit like the client's own resets, or a client
    /// could open and break streams as fast as it resets them. Other codes
    /// (an endpoint gone, a deadline) are the proxy's and never count; nor
    /// do a client connection's resets of an endpoint's malformed
    /// responses, which would end every other request on the connection.
    /// False when the connection failed instead.
    private mutating func writeResetFromHandler(
        _ id: HTTP2StreamID, _ code: HTTP2ErrorCode
    ) -> Bool {
        if role == .server && code == .protocolError {
            guard floodGuard.recordReset() else {
                fail(HTTP2ConnectionError(.enhanceYourCalm, "too many malformed streams in a short time"))
                return false
            }
            events.append(.peerError(code, endedConnection: false))
        }
        // RFC 9113 section 8.1: NO_ERROR tells the client to stop sending a
        // request whose complete response is out; while part of that
        // response waits for the client's window, it is not out yet.
        if code == .noError, let index = streams.index(forKey: id), !streams.values[index].blocked.isEmpty {
            resetWhenSent.insert(id)
            return true
        }
        writeReset(id, code)
        return true
    }
}
