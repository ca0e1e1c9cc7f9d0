import NIOCore

/// The first handler of every client connection: it reads until the bytes
/// either are the HTTP/2 connection preface (h2c with prior knowledge) or
/// cannot be, then installs the matching pipeline, replays what it read and
/// leaves. One listener port serves both protocols this way.
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

    /// Decides from the bytes seen so far; nil while they are a strict prefix of the preface.
    static func detect(_ bytes: ByteBuffer) -> Detected? {
        let seen = bytes.readableBytesView
        for (offset, byte) in zip(http2Preface.indices, seen) where byte != http2Preface[offset] {
            return .http1
        }
        return seen.count >= http2Preface.count ? .http2 : nil
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
