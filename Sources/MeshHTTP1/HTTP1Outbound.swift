import NIOCore
import NIOHTTP1

/// The bytes one HTTP/1.1 connection sends, built in place: heads, small
/// bodies and chunk framing gather in one buffer that goes out as a single
/// write per flush; large bodies are written as they are, never copied.
package struct HTTP1Outbound {
    /// How the body of the message being written is delimited.
    package enum Framing {
        /// No body (or the body of a HEAD response, which is never sent).
        case none
        /// Content-Length, or until the connection closes: bytes as they are.
        case raw
        case chunked
    }

    /// Bodies up to this size are copied next to their head: one write is
    /// cheaper than two at this size.
    package static let copyLimit = 4096

    private var bytes: ByteBuffer
    package private(set) var framing = Framing.none

    package init(allocator: ByteBufferAllocator) {
        bytes = allocator.buffer(capacity: 512)
    }

    /// Bytes gathered for the next flush.
    package var gatheredBytes: Int { bytes.readableBytes }

    // MARK: Heads

    package mutating func writeRequestLine(method: HTTPMethod, uri: String) {
        bytes.writeString(method.rawValue)
        bytes.writeInteger(UInt8(ascii: " "))
        bytes.writeString(uri)
        bytes.writeStaticString(" HTTP/1.1\r\n")
    }

    package mutating func writeStatusLine(_ status: HTTPResponseStatus) {
        bytes.writeStaticString("HTTP/1.1 ")
        let code = status.code
        bytes.writeInteger(UInt8(ascii: "0") + UInt8(code / 100 % 10))
        bytes.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        bytes.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
        bytes.writeInteger(UInt8(ascii: " "))
        bytes.writeString(status.reasonPhrase)
        bytes.writeStaticString("\r\n")
    }

    /// `name: value` lines, copied in one pass over reserved space.
    package mutating func writeFields(_ headers: HTTPHeaders) {
        var length = 0
        for (name, value) in headers {
            length += name.utf8.count + value.utf8.count + 4
        }
        bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
            var offset = 0
            func copy(_ string: String) {
                var string = string
                string.withUTF8 { utf8 in
                    UnsafeMutableRawBufferPointer(rebasing: out[offset...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
                    offset += utf8.count
                }
            }
            for (name, value) in headers {
                copy(name)
                out[offset] = UInt8(ascii: ":")
                out[offset + 1] = UInt8(ascii: " ")
                offset += 2
                copy(value)
                out[offset] = UInt8(ascii: "\r")
                out[offset + 1] = UInt8(ascii: "\n")
                offset += 2
            }
            return offset
        }
    }

    package mutating func writeField(_ name: StaticString, _ value: StaticString) {
        bytes.writeStaticString(name)
        bytes.writeStaticString(": ")
        bytes.writeStaticString(value)
        bytes.writeStaticString("\r\n")
    }

    /// Ends the head; the body that follows is delimited by `framing`.
    package mutating func endHead(framing: Framing) {
        if case .chunked = framing {
            writeField("transfer-encoding", "chunked")
        }
        bytes.writeStaticString("\r\n")
        self.framing = framing
    }

    // MARK: Bodies

    package mutating func writeBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        let length = body.readableBytes
        guard length > 0 else { return }
        switch framing {
        case .none:
            return
        case .raw:
            append(body, context: context)
        case .chunked:
            writeChunkSize(length)
            append(body, context: context)
            bytes.writeStaticString("\r\n")
        }
    }

    /// Ends the message: the last chunk and the trailers, when chunked.
    package mutating func writeEnd(trailers: HTTPHeaders?) {
        guard case .chunked = framing else {
            framing = .none
            return
        }
        bytes.writeStaticString("0\r\n")
        if let trailers {
            writeFields(trailers)
        }
        bytes.writeStaticString("\r\n")
        framing = .none
    }

    /// Writes the gathered bytes and flushes; `promise` completes once they
    /// (and everything written before them) are out.
    package mutating func flush(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        guard bytes.readableBytes > 0 || promise != nil else {
            context.flush()
            return
        }
        context.writeAndFlush(NIOAny(bytes), promise: promise)
        // Written at once in the usual case, so the storage is ours again and
        // is reused; otherwise `clear` leaves it to the write and allocates.
        bytes.clear()
    }

    private mutating func append(_ body: ByteBuffer, context: ChannelHandlerContext) {
        if body.readableBytes <= Self.copyLimit {
            var body = body
            bytes.writeBuffer(&body)
            return
        }
        if bytes.readableBytes > 0 {
            context.write(NIOAny(bytes), promise: nil)
            bytes = context.channel.allocator.buffer(capacity: 512)
        }
        context.write(NIOAny(body), promise: nil)
    }

    private mutating func writeChunkSize(_ size: Int) {
        var digits = 0
        var rest = size
        repeat {
            digits += 1
            rest >>= 4
        } while rest > 0
        for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
            let nibble = UInt8((size >> shift) & 0xF)
            bytes.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
        bytes.writeStaticString("\r\n")
    }
}
