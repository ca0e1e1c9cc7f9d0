import MeshConfig
import MeshHTTP2
import MeshUpstream
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL

/// One active health check of one endpoint: a connection of its own (never
/// a pooled one, whose health says nothing of new connections), the probe,
/// then close. The result is whether the endpoint passed; every failure
/// (refused, reset, wrong answer, no answer within the timeout) is a fail.
enum HealthProbe {
    struct TimedOut: Error {}

    static func run(
        _ probe: HealthCheckConfig.Probe, address: SocketAddress, authority: String, protocolKind: UpstreamProtocol,
        tls: UpstreamTLS?, timeout: TimeAmount, on loop: EventLoop
    ) -> EventLoopFuture<Bool> {
        let verdict = loop.makePromise(of: Bool.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handlers: [ChannelHandler]
                    switch (probe, protocolKind) {
                    case (.tcp, _):
                        handlers = []
                    case (.http(let path, let statuses), .http1):
                        handlers = [HTTP1ProbeHandler(path: path, authority: authority, expectedStatuses: statuses, verdict: verdict)]
                    case (.http, .http2), (.grpc, _):
                        handlers = [
                            HTTP2ConnectionCodec(role: .client, settings: UpstreamHTTP2Settings.local),
                            HTTP2ProbeHandler(probe: probe, authority: authority, verdict: verdict),
                        ]
                    }
                    // TLS first: the probe's request waits in it for the handshake.
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                        // A TCP probe of a TLS endpoint passes on a finished
                        // handshake, so a refused certificate fails it.
                        if case .tcp = probe {
                            let handshake = channel.eventLoop.makePromise(of: Void.self)
                            handshake.futureResult.map { true }.cascade(to: verdict)
                            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshake))
                        }
                    }
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                }
            }
        let deadline = loop.scheduleTask(in: timeout) { verdict.fail(TimedOut()) }
        bootstrap.connect(to: address).whenComplete { result in
            switch result {
            case .success(let channel):
                if case .tcp = probe, tls == nil {
                    verdict.succeed(true)
                }
                // Whatever the verdict, the connection has served its purpose.
                verdict.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                verdict.fail(error)
            }
        }
        return verdict.futureResult.always { _ in deadline.cancel() }.recover { _ in false }
    }
}

/// A probe's handler: a connection that ends or fails before the answer is a fail.
private protocol ProbeHandler: ChannelInboundHandler {
    var verdict: EventLoopPromise<Bool> { get }
}

extension ProbeHandler {
    func channelInactive(context: ChannelHandlerContext) {
        verdict.succeed(false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        verdict.succeed(false)
        context.close(promise: nil)
    }
}

/// `GET path HTTP/1.1`, then the status line of the answer decides.
private final class HTTP1ProbeHandler: ProbeHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let expectedStatuses: [Int]
    let verdict: EventLoopPromise<Bool>
    private var received = ""

    init(path: String, authority: String, expectedStatuses: [Int], verdict: EventLoopPromise<Bool>) {
        request = "GET \(path) HTTP/1.1\r\nhost: \(authority)\r\nuser-agent: swiftmesh-health-check\r\nconnection: close\r\n\r\n"
        self.expectedStatuses = expectedStatuses
        self.verdict = verdict
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readString(length: buffer.readableBytes) ?? ""
        guard let lineEnd = received.range(of: "\r\n") else {
            if received.utf8.count > 8192 {
                verdict.succeed(false)
            }
            return
        }
        // "HTTP/1.1 200 OK": the status is the second word.
        let words = received[..<lineEnd.lowerBound].split(separator: " ", maxSplits: 2)
        let status = words.count >= 2 && words[0].hasPrefix("HTTP/1.") ? Int(words[1]) : nil
        verdict.succeed(status.map(expectedStatuses.contains) ?? false)
    }
}

/// The probe as one HTTP/2 stream over cleartext: `GET path`, or a gRPC
/// `grpc.health.v1.Health/Check` call, answered on stream 1.
private final class HTTP2ProbeHandler: ProbeHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let probe: HealthCheckConfig.Probe
    private let authority: String
    let verdict: EventLoopPromise<Bool>
    private let stream = HTTP2StreamID(1)
    private var status: Int?
    private var grpcStatus: Int?
    private var message = ByteBuffer()

    init(probe: HealthCheckConfig.Probe, authority: String, verdict: EventLoopPromise<Bool>) {
        self.probe = probe
        self.authority = authority
        self.verdict = verdict
    }

    func channelActive(context: ChannelHandlerContext) {
        // The codec, before this handler, sent the connection preface on this same event.
        context.fireChannelActive()
        switch probe {
        case .http(let path, _):
            let fields = HPACKHeaders([
                (":method", "GET"), (":scheme", "http"), (":path", path), (":authority", authority),
                ("user-agent", "swiftmesh-health-check"),
            ])
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields, endStream: true)))), promise: nil)
        case .grpc(let service):
            let fields = HPACKHeaders([
                (":method", "POST"), (":scheme", "http"), (":path", GRPCHealthMessages.checkPath), (":authority", authority),
                ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "swiftmesh-health-check"),
            ])
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields)))), promise: nil)
            let body = GRPCHealthMessages.checkRequest(service: service, allocator: context.channel.allocator)
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body), endStream: true)))), promise: nil)
        case .tcp:
            break
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.streamID == stream else { return }
        switch frame.payload {
        case .headers(let headers):
            if let value = headers.headers.first(name: ":status") {
                status = Int(value)
            }
            if let value = headers.headers.first(name: "grpc-status") {
                grpcStatus = Int(value)
            }
            if headers.endStream {
                decide()
            }
        case .data(let data):
            if case .byteBuffer(var bytes) = data.data, message.readableBytes < 4096 {
                message.writeBuffer(&bytes)
            }
            if data.endStream {
                decide()
            }
        case .rstStream:
            verdict.succeed(false)
        default:
            break
        }
    }

    private func decide() {
        switch probe {
        case .http(_, let expected):
            verdict.succeed(status.map(expected.contains) ?? false)
        case .grpc:
            verdict.succeed(status == 200 && grpcStatus == 0 && GRPCHealthMessages.isServing(message))
        case .tcp:
            verdict.succeed(true)
        }
    }
}
