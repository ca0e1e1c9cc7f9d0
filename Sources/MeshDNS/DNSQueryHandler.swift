import NIOCore

/// Runs one query on an unconnected UDP channel: sends it when the channel
/// becomes active, sends it again once halfway through the timeout (UDP
/// loses datagrams, and one retry is cheap), and completes `promise` with the
/// first datagram from the server that carries the query's id.
///
/// The socket is unconnected on purpose: a connected UDP socket reports ICMP
/// "port unreachable" as a read error, which would make a silent or absent
/// server look like a transport failure instead of the timeout callers expect.
/// Source filtering is therefore done here, by address and id.
final class DNSQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let query: DNSQuery
    private let server: SocketAddress
    private let timeout: TimeAmount
    private let promise: EventLoopPromise<DNSAnswer>
    /// The retry and the deadline; cancelled as soon as the promise completes.
    private var timers: [Scheduled<Void>] = []

    init(query: DNSQuery, server: SocketAddress, timeout: TimeAmount, promise: EventLoopPromise<DNSAnswer>) {
        self.query = query
        self.server = server
        self.timeout = timeout
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        timers.append(loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds / 2)) {
            self.send(context: context)
        })
        timers.append(loop.scheduleTask(in: timeout) {
            self.promise.fail(DNSLookupError.timeout(server: self.server.dnsServerDescription))
        })
        // Whoever completes the promise first (a response, the deadline, a
        // send error, the caller's cancellation, even before this point)
        // stops the timers; later completions are ignored by the promise.
        promise.futureResult.assumeIsolated().whenComplete { _ in
            self.timers.forEach { $0.cancel() }
            self.timers.removeAll()
        }
        send(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        // Anything not from the server or not for this query is dropped
        // without a verdict; only our own answer may fail the lookup.
        guard envelope.remoteAddress == server, DNSResponse.peekID(bytes) == query.id else {
            return
        }
        do {
            promise.succeed(try DNSResponse(decoding: bytes).answer(to: query))
        } catch {
            promise.fail(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(DNSLookupError.transport("UDP socket error: \(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Normally the lookup is already complete when its socket closes; this
        // only matters if the socket goes away underneath us.
        promise.fail(DNSLookupError.transport("UDP socket closed before an answer arrived"))
        context.fireChannelInactive()
    }

    private func send(context: ChannelHandlerContext) {
        let datagram = AddressedEnvelope(
            remoteAddress: server,
            data: context.channel.allocator.buffer(bytes: query.encode()))
        let promise = self.promise
        let server = self.server.dnsServerDescription
        context.writeAndFlush(wrapOutboundOut(datagram)).whenFailure { error in
            promise.fail(DNSLookupError.transport("cannot send the query to \(server): \(error)"))
        }
    }
}
