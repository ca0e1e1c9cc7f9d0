import NIOCore
import NIOSSL

/// The first handler of a connection to a listener in permissive TLS mode:
/// a TLS handshake starts with a handshake record (content type 22), which
/// no HTTP/1.1 request line or HTTP/2 preface does. So one byte tells them
/// apart; TLS gets a server handler (and the handshake's counter) inserted,
/// plaintext goes straight on.
final class PlaintextOrTLSDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// RFC 8446 section 5.1: ContentType.handshake.
    static let handshakeRecordType: UInt8 = 22

    private let context: NIOSSLContext
    private let handshakeCounter: TLSHandshakeCounter

    init(context: NIOSSLContext, handshakeCounter: TLSHandshakeCounter) {
        self.context = context
        self.handshakeCounter = handshakeCounter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.readableBytesView.first else { return }
        if first == Self.handshakeRecordType {
            do {
                try context.pipeline.syncOperations.addHandlers(
                    [NIOSSLServerHandler(context: self.context), handshakeCounter], position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
