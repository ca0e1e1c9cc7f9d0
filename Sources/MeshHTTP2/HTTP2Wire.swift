import NIOCore
import NIOHTTP2

/// RFC 9113's wire format: frame types, flags, settings and the 9-byte
/// frame header, as `HTTP2ConnectionCodec` reads and writes them.
package enum HTTP2Wire {
    /// What a client sends first (RFC 9113 section 3.4).
    package static let clientPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    package static let frameHeaderLength = 9
    /// Every peer accepts frames this large, and we accept no larger ones
    /// (we send up to what the peer's SETTINGS_MAX_FRAME_SIZE allows).
    package static let defaultMaxFrameSize = 1 << 14
    package static let maxAllowedFrameSize = (1 << 24) - 1
    /// RFC 9113 section 6.9.1: no flow-control window may exceed 2^31-1.
    package static let maxWindowSize = Int(Int32.max)
    /// RFC 9113 section 6.5.2: the window every stream starts with until SETTINGS say otherwise.
    package static let defaultInitialWindowSize = 65535

    package enum FrameType {
        package static let data: UInt8 = 0x0
        package static let headers: UInt8 = 0x1
        package static let priority: UInt8 = 0x2
        package static let rstStream: UInt8 = 0x3
        package static let settings: UInt8 = 0x4
        package static let pushPromise: UInt8 = 0x5
        package static let ping: UInt8 = 0x6
        package static let goAway: UInt8 = 0x7
        package static let windowUpdate: UInt8 = 0x8
        package static let continuation: UInt8 = 0x9
    }

    package enum Flag {
        package static let endStream: UInt8 = 0x1
        package static let ack: UInt8 = 0x1
        package static let endHeaders: UInt8 = 0x4
        package static let padded: UInt8 = 0x8
        package static let priority: UInt8 = 0x20
    }

    /// RFC 9113 section 7's name of an error code, for metrics and logs.
    package static func errorName(_ code: HTTP2ErrorCode) -> String {
        switch code.networkCode {
        case 0x0: "NO_ERROR"
        case 0x1: "PROTOCOL_ERROR"
        case 0x2: "INTERNAL_ERROR"
        case 0x3: "FLOW_CONTROL_ERROR"
        case 0x4: "SETTINGS_TIMEOUT"
        case 0x5: "STREAM_CLOSED"
        case 0x6: "FRAME_SIZE_ERROR"
        case 0x7: "REFUSED_STREAM"
        case 0x8: "CANCEL"
        case 0x9: "COMPRESSION_ERROR"
        case 0xA: "CONNECT_ERROR"
        case 0xB: "ENHANCE_YOUR_CALM"
        case 0xC: "INADEQUATE_SECURITY"
        case 0xD: "HTTP_1_1_REQUIRED"
        default: "UNKNOWN"
        }
    }

    package enum Setting {
        package static let enablePush: UInt16 = 0x2
        package static let maxConcurrentStreams: UInt16 = 0x3
        package static let initialWindowSize: UInt16 = 0x4
        package static let maxFrameSize: UInt16 = 0x5
        package static let maxHeaderListSize: UInt16 = 0x6
    }
}

/// A frame header read off the wire.
package struct HTTP2FrameHeader {
    package var length: Int
    package var type: UInt8
    package var flags: UInt8
    package var streamID: HTTP2StreamID

    package func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
}

/// Something the peer did that RFC 9113 makes an error of the whole
/// connection: answered with GOAWAY carrying `code`, then the connection closes.
package struct HTTP2ConnectionError: Error {
    package var code: HTTP2ErrorCode
    /// For the log: which rule the peer broke.
    package var reason: String

    package init(_ code: HTTP2ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }
}

extension ByteBuffer {
    /// Reads a frame header if all 9 bytes are there.
    package mutating func readHTTP2FrameHeader() -> HTTP2FrameHeader? {
        guard readableBytes >= HTTP2Wire.frameHeaderLength,
              let lengthHigh = readInteger(as: UInt16.self), let lengthLow = readInteger(as: UInt8.self),
              let type = readInteger(as: UInt8.self), let flags = readInteger(as: UInt8.self),
              let stream = readInteger(as: UInt32.self)
        else { return nil }
        return HTTP2FrameHeader(
            length: Int(lengthHigh) << 8 | Int(lengthLow), type: type, flags: flags,
            streamID: HTTP2StreamID(Int32(bitPattern: stream & 0x7FFF_FFFF)))
    }

    /// Peeks at the payload length of the frame header at the reader index.
    package func peekHTTP2FrameLength() -> Int? {
        guard readableBytes >= HTTP2Wire.frameHeaderLength,
              let high = getInteger(at: readerIndex, as: UInt16.self),
              let low = getInteger(at: readerIndex + 2, as: UInt8.self)
        else { return nil }
        return Int(high) << 8 | Int(low)
    }

    package mutating func writeHTTP2FrameHeader(length: Int, type: UInt8, flags: UInt8, streamID: HTTP2StreamID) {
        writeInteger(UInt16(truncatingIfNeeded: length >> 8))
        writeInteger(UInt8(truncatingIfNeeded: length))
        writeInteger(type)
        writeInteger(flags)
        writeInteger(UInt32(Int32(streamID)))
    }

    /// Overwrites the length of the frame header at `index`, written before its payload was.
    package mutating func setHTTP2FrameLength(_ length: Int, at index: Int) {
        setInteger(UInt16(truncatingIfNeeded: length >> 8), at: index)
        setInteger(UInt8(truncatingIfNeeded: length), at: index + 2)
    }
}
