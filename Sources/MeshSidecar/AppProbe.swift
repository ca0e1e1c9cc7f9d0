import MeshConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What the sidecar learns by connecting to its app: whether it accepts
/// connections (reported with every heartbeat, so that callers stop getting
/// an instance whose app died while its sidecar lives), and, until known,
/// which protocol it speaks: the sidecar sends the HTTP/2 connection preface
/// and an h2c app answers with its SETTINGS, an HTTP/1.1 app with an error
/// status or by closing.
struct AppProbe: Sendable {
    enum Result: Equatable {
        case down
        /// Accepting connections; the protocol when it was asked for and the app answered in time.
        case up(UpstreamProtocol?)
    }

    let app: HostPort

    func probe(timeout: Duration, detectProtocol: Bool) async -> Result {
        let reply = NIOLockedValueBox<EventLoopPromise<ByteBuffer>?>(nil)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(timeout / .nanoseconds(1))))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
                        reply.withLockedValue { $0 = promise }
                        try channel.pipeline.syncOperations.addHandler(FirstBytesHandler(promise: promise))
                    }
                }
                .connect(host: app.host, port: app.port)
                .get()
        } catch {
            return .down
        }
        defer { channel.close(promise: nil) }
        guard detectProtocol, let promise = reply.withLockedValue({ $0 }) else { return .up(nil) }
        var preface = channel.allocator.buffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
        preface.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
        channel.writeAndFlush(preface, promise: nil)
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) {
            promise.fail(ChannelError.connectTimeout(.zero))
        }
        defer { deadline.cancel() }
        guard let bytes = try? await promise.futureResult.get() else { return .up(nil) }
        let frameType = bytes.getInteger(at: bytes.readerIndex + 3, as: UInt8.self)
        return .up(frameType == 4 ? .http2 : .http1)
    }
}

/// Completes `promise` with the first nine bytes the peer sends (a frame
/// header's worth), or whatever came before it closed.
private final class FirstBytesHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<ByteBuffer>
    private var received = ByteBuffer()

    init(promise: EventLoopPromise<ByteBuffer>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        if received.readableBytes >= 9 {
            promise.succeed(received)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(received)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.succeed(received)
        context.close(promise: nil)
    }
}
