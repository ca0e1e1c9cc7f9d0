import NIOCore
import NIOPosix
import NIOSSL

/// How the pools of one endpoint on one event loop open connections (their
/// `EndpointDialer.connect`): the address, the cluster's connect timeout,
/// TCP_NODELAY (requests are small and must not wait for Nagle), the
/// cluster's TLS, and the counters of connects and handshakes.
struct EndpointConnector {
    let address: SocketAddress
    let eventLoop: EventLoop
    let connectTimeout: TimeAmount
    /// nil: plaintext.
    let tls: UpstreamTLS?
    let tally: UpstreamConnectTally

    /// A connected channel; with TLS, one whose handshake is done, so that a
    /// certificate the proxy refuses fails the connect (within the connect
    /// timeout) instead of the first request sent on it.
    func connect() -> EventLoopFuture<Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let tally = tally
        guard let tls else {
            return bootstrap.connect(to: address).always { tally.connected($0) }
        }
        // One deadline for the TCP connect and the handshake together.
        let timeout = connectTimeout
        let deadline = NIODeadline.now() + timeout
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                }
            }
            .connect(to: address)
            .always { tally.connected($0) }
            .flatMap { channel in
                let handshake = channel.eventLoop.makePromise(of: Void.self)
                do {
                    // Added once connected, before the loop turns: the
                    // handshake needs the endpoint's answer, so it cannot be over yet.
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshake))
                } catch {
                    handshake.fail(error)
                }
                let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
                    handshake.fail(ChannelError.connectTimeout(timeout))
                }
                return handshake.futureResult
                    .always { _ in timer.cancel() }
                    .flatMapThrowing {
                        try tls.checkIdentity(of: channel)
                        return channel
                    }
                    .always { tally.handshook($0) }
                    .flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw error
                    }
            }
    }
}

/// Counts a cluster's TCP connects and TLS handshakes in the stats of the
/// loop whose pools connect. `@unchecked Sendable`: its futures complete on
/// that loop (the bootstrap's group is the loop), the only thread that touches the stats.
struct UpstreamConnectTally: @unchecked Sendable {
    let stats: LoopStats
    /// The cluster's label.
    let cluster: Int

    func connected<Value>(_ result: Result<Value, Error>) {
        stats.upstreamConnect(cluster: cluster, succeeded: result.isSuccess)
    }

    /// The handshake and the check of the endpoint's identity after it.
    func handshook<Value>(_ result: Result<Value, Error>) {
        stats.upstreamHandshake(cluster: cluster, succeeded: result.isSuccess)
    }
}

extension Result {
    fileprivate var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
