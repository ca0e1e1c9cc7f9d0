import NIOCore
import NIOPosix

/// One query over one ephemeral UDP socket.
///
/// A socket per lookup is the simple, safe choice: lookups happen every few
/// seconds per cluster, not per request, and a fresh random source port for
/// each query makes spoofed answers harder to land.
enum DNSUDPTransport {
    /// Sends `query` to `server` and waits for its answer, at most `timeout`.
    /// The socket is closed on every path before this returns.
    static func exchange(
        _ query: DNSQuery,
        with server: SocketAddress,
        timeout: TimeAmount,
        on group: any EventLoopGroup
    ) async throws -> DNSAnswer {
        let localAddress: SocketAddress
        switch server {
        case .v4:
            localAddress = try SocketAddress(ipAddress: "0.0.0.0", port: 0)
        case .v6:
            localAddress = try SocketAddress(ipAddress: "::", port: 0)
        case .unixDomainSocket:
            throw DNSLookupError.transport("the DNS server address must be IPv4 or IPv6, not \(server)")
        }

        let loop = group.next()
        let promise = loop.makePromise(of: DNSAnswer.self)
        let channel: any Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            DNSQueryHandler(query: query, server: server, timeout: timeout, promise: promise))
                    }
                }
                .bind(to: localAddress)
                .get()
        } catch {
            // The handler never became active, so nothing else will complete the promise.
            promise.fail(error)
            throw DNSLookupError.transport("cannot open a UDP socket on \(localAddress.dnsServerDescription): \(error)")
        }

        let outcome: Result<DNSAnswer, any Error>
        do {
            outcome = .success(
                try await withTaskCancellationHandler {
                    try await promise.futureResult.get()
                } onCancel: {
                    promise.fail(CancellationError())
                })
        } catch {
            outcome = .failure(error)
        }
        try? await channel.close()
        return try outcome.get()
    }
}
