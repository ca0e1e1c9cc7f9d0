import NIOCore
import NIOPosix

/// A UDP server on 127.0.0.1 that answers each datagram as a script says:
/// nothing (a lost datagram), a stray reply, an error code. It tests what a
/// real server will not do on demand.
struct ScriptedDNSServer {
    /// Given a query and how many times a query with this id has arrived
    /// (1 for the first), the datagrams to send back.
    typealias Script = @Sendable (_ query: [UInt8], _ attempt: Int) -> [[UInt8]]

    let address: SocketAddress
    private let channel: any Channel

    static func start(_ script: @escaping Script) async throws -> ScriptedDNSServer {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptHandler(script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let address = channel.localAddress else {
            try await channel.close()
            throw LoopbackPortError()
        }
        return ScriptedDNSServer(address: address, channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }

    /// Runs `body` with a server, closing it on every path.
    static func with(_ script: @escaping Script, _ body: (SocketAddress) async throws -> Void) async throws {
        let server = try await start(script)
        do {
            try await body(server.address)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

private final class ScriptHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let script: ScriptedDNSServer.Script
    private var attempts: [[UInt8]: Int] = [:]

    init(script: @escaping ScriptedDNSServer.Script) {
        self.script = script
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let query = Array(envelope.data.readableBytesView)
        let attempt = attempts[query, default: 0] + 1
        attempts[query] = attempt
        for reply in script(query, attempt) {
            let datagram = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply))
            context.writeAndFlush(wrapOutboundOut(datagram), promise: nil)
        }
    }
}

/// The query's id and question (what follows the header: our client sends exactly one).
func parts(of query: [UInt8]) -> (id: UInt16, question: [UInt8], type: UInt16) {
    let id = UInt16(query[0]) << 8 | UInt16(query[1])
    let question = Array(query[12...])
    let type = UInt16(question[question.count - 4]) << 8 | UInt16(question[question.count - 3])
    return (id, question, type)
}

/// A reply to `query` with the addresses that fit its type (4 bytes for A,
/// 16 for AAAA), or with an error code.
func reply(to query: [UInt8], id: UInt16? = nil, rcode: UInt16 = 0, addresses: [[UInt8]] = []) -> [UInt8] {
    let (queryID, question, type) = parts(of: query)
    let matching = addresses.filter { $0.count == (type == 28 ? 16 : 4) }
    return header(id: id ?? queryID, flags: 0x8180 | rcode, answers: UInt16(matching.count)) + question
        + matching.flatMap { record(pointer(12), type: type, ttl: 60, data: $0) }
}
