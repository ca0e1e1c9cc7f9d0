import NIOCore
import NIOPosix

/// How the pools of one endpoint on one event loop open connections: the
/// address, the cluster's connect timeout, TCP_NODELAY (requests are small
/// and must not wait for Nagle), the loop's flush batch that every
/// connection's writes join, how long a connection may sit unused, and the
/// cluster's circuit breaker, which counts the pools' connections.
struct EndpointConnector {
    let address: SocketAddress
    let eventLoop: EventLoop
    let flushBatch: FlushBatch
    let breaker: CircuitBreaker
    let connectTimeout: TimeAmount
    /// The cluster's `idleTimeout`.
    let idleTimeout: TimeAmount

    func connect() -> EventLoopFuture<Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(to: address)
    }
}
