import NIOCore

/// The first handler of every client connection: it reads until the bytes
/// either are the HTTP/2 connection preface (h2c with prior knowledge) or
/// an HTTP/1 request line, then installs the matching pipeline, replays
/// what it read and leaves. One listener port serves both protocols this way.
///
/// Bytes that are neither (a first line without an `HTTP/` version, as an
/// HTTP/2 client with a broken preface sends) go to HTTP/2, whose codec
/// answers an invalid preface as RFC 9113 section 3.4 asks: GOAWAY
/// PROTOCOL_ERROR, then close. An HTTP/1 answer would be bytes such a
/// client cannot even parse.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Detected {
        case http1
        case http2
    }

    /// RFC 9113 section 3.4.
    static let http2Preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let install: (ChannelHandlerContext, Detected) throws -> Void
    private var buffered: ByteBuffer?
    private let idleTimeout: TimeAmount
    /// Closes a connection that has not said enough to be detected within the
    /// listener's idleTimeout, so silent connections cannot pile up.
    private var silenceTimeout: Scheduled<Void>?

    /// - Parameter install: adds the protocol's handlers after this one.
    init(idleTimeout: TimeAmount, install: @escaping (ChannelHandlerContext, Detected) throws -> Void) {
        self.idleTimeout = idleTimeout
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

    /// Decides from the bytes seen so far; nil while they are a strict
    /// prefix of the preface or an unfinished first line.
    static func detect(_ bytes: ByteBuffer) -> Detected? {
        let seen = bytes.readableBytesView
        var matchesPreface = true
        for (offset, byte) in zip(http2Preface.indices, seen) where byte != http2Preface[offset] {
            matchesPreface = false
            break
        }
        if matchesPreface {
            return seen.count >= http2Preface.count ? .http2 : nil
        }
        guard let lineEnd = seen.firstIndex(of: UInt8(ascii: "\n")) else {
            return seen.count > maxDetectedLineBytes ? .http1 : nil
        }
        return endsWithHTTPVersion(seen[seen.startIndex..<lineEnd]) ? .http1 : .http2
    }

    /// Whether the line (maybe with its CR, after any empty lines RFC 9112
    /// section 2.2 lets a client send first) ends with a word starting
    /// `HTTP/`: an HTTP/1 request line, valid or not, which the HTTP/1
    /// parser answers.
    private static func endsWithHTTPVersion(_ line: ByteBufferView.SubSequence) -> Bool {
        var end = line.endIndex
        if end > line.startIndex, line[line.index(before: end)] == UInt8(ascii: "\r") {
            end = line.index(before: end)
        }
        if end == line.startIndex {
            return true  // an empty line before the request line
        }
        let words = line[line.startIndex..<end]
        let lastWord = words.lastIndex(of: UInt8(ascii: " ")).map { words[words.index(after: $0)...] } ?? words
        return lastWord.starts(with: "HTTP/".utf8)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffered {
            buffered.writeBuffer(&incoming)
            self.buffered = buffered
        } else {
            buffered = incoming
        }
        guard let bytes = buffered, let detected = Self.detect(bytes) else { return }
        buffered = nil
        do {
            try install(context, detected)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
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
