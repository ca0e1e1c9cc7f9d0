import MeshLoopIO
import NIOCore

/// The cluster's circuit breaker as the pools see it: the counts of its
/// pending requests and connections, shared by every event loop.
package protocol PoolBreaker: AnyObject, Sendable {
    /// Counts a request that must wait for a connection or stream; nil
    /// (nothing counted) when `maxPendingRequests` already wait.
    func tryAddPending() -> Int?
    func pendingEnded()
    /// Counts a connection about to open; false at `maxConnections` unless `force`.
    func tryOpenConnection(force: Bool) -> Bool
    func connectionClosed()
}

/// How the pools of one endpoint on one event loop get connections: a
/// connected channel (TCP, and TLS with its handshake and identity check
/// done) from `connect`, the loop and its flush batch that every
/// connection's writes join, how long a connection may sit unused (the
/// cluster's `idleTimeout`), and the cluster's circuit breaker.
package struct EndpointDialer {
    package let eventLoop: EventLoop
    package let flushBatch: FlushBatch
    package let breaker: any PoolBreaker
    package let idleTimeout: TimeAmount
    package let connect: () -> EventLoopFuture<Channel>

    package init(
        eventLoop: EventLoop, flushBatch: FlushBatch, breaker: any PoolBreaker, idleTimeout: TimeAmount,
        connect: @escaping () -> EventLoopFuture<Channel>
    ) {
        self.eventLoop = eventLoop
        self.flushBatch = flushBatch
        self.breaker = breaker
        self.idleTimeout = idleTimeout
        self.connect = connect
    }
}
