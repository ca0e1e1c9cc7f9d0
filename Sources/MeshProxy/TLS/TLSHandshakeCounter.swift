import NIOCore
import NIOTLS

/// Counts the TLS handshake of a listener's connection in the loop's stats:
/// a success when it completes, a failure when the TLS handler reports an
/// error before that (an untrusted or missing client certificate, a
/// protocol the listener refuses). Sits right after the TLS server handler
/// and leaves the pipeline once the handshake is done.
final class TLSHandshakeCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let stats: LoopStats
    private let listener: Int
    private var counted = false

    init(stats: LoopStats, listener: Int) {
        self.stats = stats
        self.listener = listener
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted? = event as? TLSUserEvent, !counted {
            counted = true
            stats.downstreamHandshake(listener: listener, succeeded: true)
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !counted {
            counted = true
            stats.downstreamHandshake(listener: listener, succeeded: false)
        }
        context.fireErrorCaught(error)
    }
}
