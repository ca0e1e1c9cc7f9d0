import NIOCore

/// The first handler of every client connection: it reads until the bytes
/// either are the HTTP/2 connection preface (h2c with prior knowledge) or
/// an HTTP/1 request line, then installs the matching pipeline, replays
/// what it read and leaves. One listener port serves both protocols this way.
///
/// Bytes that can be neither (an HTTP/2 client's broken preface, a TLS
/// handshake sent to a plaintext port, anything binary) go to HTTP/2, whose
/// codec answers an invalid preface as RFC 9113 section 3.4 asks: GOAWAY
/// PROTOCOL_ERROR, then close. An HTTP/1 answer would be bytes such a
/// client cannot even parse. Binary bytes are told at the first one, so a
/// TLS handshake does not wait for a line end that never comes.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Detected {
        case http1
        case http2
    }

    /// RFC 9113 section 3.4.
    static let http2Preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let install: (ChannelHandlerContext, Detected, NIODeadline) throws -> Void
    private var buffered: ByteBuffer?
    private let idleTimeout: TimeAmount
    private let requestHeadersTimeout: TimeAmount
    /// When the first byte came: the first request head's time counts from it.
    private var firstByte: NIODeadline?
    /// Closes a connection that has not said enough to be detected within the
    /// listener's idleTimeout, so silent connections cannot pile up; once
    /// bytes came, within its requestHeadersTimeout (a request line trickled
    /// a byte at a time).
    private var silenceTimeout: Scheduled<Void>?
    /// Hears when the connection closes for `requestHeadersTimeout`.
    var onRequestHeadersTimeout: (() -> Void)?

    /// - Parameter install: adds the protocol's handlers after this one;
    ///   it is given the time the first byte came.
    init(
        idleTimeout: TimeAmount, requestHeadersTimeout: TimeAmount,
        install: @escaping (ChannelHandlerContext, Detected, NIODeadline) throws -> Void
    ) {
        self.idleTimeout = idleTimeout
        self.requestHeadersTimeout = requestHeadersTimeout
        self.install = install
    }

    func handlerAdded(context: ChannelHandlerContext) {
        silenceTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        silenceTimeout?.cancel()
        silenceTimeout = nil
    }

    /// A first line longer than this is left to the HTTP/1 parser (which
    /// bounds it), rather than held here until its end arrives.
    static let maxDetectedLineBytes = 8192
    /// "PRI * HTTP/2.0\r\n": bytes that agree with the preface this far are
    /// an HTTP/2 client's, whatever follows.
    static let prefaceFirstLineLength = 16

    /// Decides from the bytes seen so far; nil while they could still be
    /// either. HTTP/2 once they are the preface, or start like it past its
    /// first line, or can be no request line: a method that is not visible
    /// ASCII (a TLS ClientHello's first byte is 0x16), a control character
    /// in the rest of the line, or a line whose last word does not start
    /// `HTTP/` (`INVALID CONNECTION PREFACE`, HTTP/0.9's `GET /`). HTTP/1
    /// once a line ending in an `HTTP/` word arrived (valid or not: the
    /// HTTP/1 parser answers it), or the line is over `maxDetectedLineBytes`.
    static func detect(_ bytes: ByteBuffer) -> Detected? {
        let seen = bytes.readableBytesView
        var agreeing = 0
        for (offset, byte) in zip(http2Preface.indices, seen) {
            guard byte == http2Preface[offset] else { break }
            agreeing += 1
        }
        if agreeing == http2Preface.count || agreeing == seen.count {
            return agreeing == http2Preface.count ? .http2 : nil
        }
        if agreeing >= prefaceFirstLineLength {
            return .http2
        }
        return requestLine(seen)
    }

    /// Walks a request line as far as it arrived: `.http2` at a byte no
    /// request line has there, the verdict at its end, nil to wait.
    private static func requestLine(_ seen: ByteBufferView) -> Detected? {
        var inMethod = true
        var lineStart: ByteBufferView.Index?
        var index = seen.startIndex
        while index < seen.endIndex {
            let byte = seen[index]
            if index - seen.startIndex >= maxDetectedLineBytes {
                return .http1
            }
            if lineStart == nil {
                // RFC 9112 section 2.2: empty lines may come before a request line.
                if byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
                    guard isVisibleASCII(byte) else { return .http2 }
                    lineStart = index
                }
            } else if inMethod {
                // Visible ASCII, not only token bytes: a method like `G@T` is
                // an HTTP/1 client's mistake, which the parser answers with 400.
                if byte == UInt8(ascii: " ") {
                    inMethod = false
                } else if !isVisibleASCII(byte) {
                    return .http2
                }
            } else if byte == UInt8(ascii: "\n") {
                var line = seen[lineStart!..<index]
                if line.last == UInt8(ascii: "\r") {
                    line = line.dropLast()
                }
                let lastWord = line.lastIndex(of: UInt8(ascii: " ")).map { line[line.index(after: $0)...] } ?? line
                return lastWord.starts(with: "HTTP/".utf8) ? .http1 : .http2
            } else if (byte < 0x20 && byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                return .http2
            }
            index = seen.index(after: index)
        }
        return nil
    }

    private static func isVisibleASCII(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        let firstByte = self.firstByte ?? context.eventLoop.now
        if self.firstByte == nil {
            self.firstByte = firstByte
            silenceTimeout?.cancel()
            silenceTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: requestHeadersTimeout) { [self] in
                requestLineTimedOut(context)
            }
        }
        if var buffered {
            buffered.writeBuffer(&incoming)
            self.buffered = buffered
        } else {
            buffered = incoming
        }
        guard let bytes = buffered, let detected = Self.detect(bytes) else { return }
        hand(bytes, to: detected, firstByte: firstByte, context)
    }

    /// Installs the protocol's handlers, replays what was read and leaves.
    private func hand(_ bytes: ByteBuffer, to detected: Detected, firstByte: NIODeadline, _ context: ChannelHandlerContext) {
        buffered = nil
        do {
            try install(context, detected, firstByte)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The first bytes did not tell the protocol within requestHeadersTimeout.
    /// A request line cut short goes to HTTP/1.1, which answers 408 (its
    /// head's time is up already); anything else is closed.
    private func requestLineTimedOut(_ context: ChannelHandlerContext) {
        silenceTimeout = nil
        guard let bytes = buffered, let firstByte, Self.couldBeRequestLine(bytes) else {
            onRequestHeadersTimeout?()
            context.close(promise: nil)
            return
        }
        hand(bytes, to: .http1, firstByte: firstByte, context)
    }

    /// Bytes that start like a request line, not like the HTTP/2 preface.
    static func couldBeRequestLine(_ bytes: ByteBuffer) -> Bool {
        let seen = bytes.readableBytesView
        guard let first = seen.first(where: { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }) else { return false }
        return isVisibleASCII(first) && !http2Preface.starts(with: seen.prefix(http2Preface.count))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Draining before the client said anything: nothing to finish.
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        buffered = nil
        context.fireChannelInactive()
    }
}
