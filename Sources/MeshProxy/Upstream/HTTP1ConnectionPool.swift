import NIOCore

/// Keep-alive HTTP/1.1 connections from one event loop to one endpoint. Idle
/// connections are reused most-recently-used first, so a burst's extra
/// connections age out while the warm ones keep serving. When the cluster is
/// at its circuit breaker's `maxConnections`, requests wait (as pending
/// requests) for a connection of this pool to come free.
final class HTTP1ConnectionPool {
    /// Idle connections kept per endpoint per loop; more are closed on release.
    static let maxIdleConnections = 128

    let connector: EndpointConnector
    private var idle: [HTTP1UpstreamHandler] = []
    /// Requests waiting for a connection of this pool, oldest first.
    private var waiting = CircularBuffer<ProxyExchange>()
    /// Connections of this pool, open or opening; each counts in the breaker.
    private var connectionCount = 0
    private var draining = false

    init(connector: EndpointConnector) {
        self.connector = connector
    }

    /// Hands `exchange` a connection: an idle one, or a new one once
    /// connected, or the next one to come free.
    func acquire(for exchange: ProxyExchange) {
        while let connection = idle.popLast() {
            if connection.isActive {
                connection.attach(exchange)
                return
            }
        }
        guard exchange.enterPending() else {
            exchange.upstreamFailed(.overflow(.maxPendingRequests))
            return
        }
        if !connect(for: exchange) {
            waiting.append(exchange)
        }
    }

    /// Opens a connection for `exchange`, unless the cluster is at
    /// `maxConnections` and this pool already has one.
    private func connect(for exchange: ProxyExchange) -> Bool {
        guard connector.breaker.tryOpenConnection(force: connectionCount == 0) else { return false }
        connectionCount += 1
        let handler = HTTP1UpstreamHandler(pool: self, exchange: exchange)
        connector.connect()
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    do {
                        try channel.pipeline.syncOperations.addHandler(handler)
                    } catch {
                        channel.close(promise: nil)
                        self.connectionGone()
                        exchange.upstreamFailed(.connectFailure)
                    }
                case .failure:
                    self.connectionGone()
                    exchange.upstreamFailed(.connectFailure)
                }
            }
        return true
    }

    /// A connection finished a request cleanly and may serve another: the
    /// oldest waiting request, else it idles.
    func release(_ connection: HTTP1UpstreamHandler) {
        guard connection.isActive else {
            connection.abort()
            return
        }
        if !waiting.isEmpty {
            // Handed over on the loop's next turn: the read that finished the
            // response must complete first, so that bytes past that response
            // close the connection instead of answering the next request.
            connector.eventLoop.assumeIsolated().execute { self.handOver(connection) }
            return
        }
        keepIdle(connection)
    }

    private func handOver(_ connection: HTTP1UpstreamHandler) {
        // Closed meanwhile: `connectionClosed` gave its place to a waiter.
        guard connection.isActive else { return }
        if let next = nextWaiting() {
            connection.attach(next)
        } else {
            keepIdle(connection)
        }
    }

    private func keepIdle(_ connection: HTTP1UpstreamHandler) {
        guard !draining, idle.count < Self.maxIdleConnections else {
            connection.abort()
            return
        }
        idle.append(connection)
    }

    /// `exchange` ended while waiting (timeout, client gone): it leaves the queue.
    func stopWaiting(_ exchange: ProxyExchange) {
        if let index = waiting.firstIndex(where: { $0 === exchange }) {
            waiting.remove(at: index)
        }
    }

    func connectionClosed(_ connection: HTTP1UpstreamHandler) {
        idle.removeAll { $0 === connection }
        connectionGone()
    }

    /// A connection of this pool closed or never opened: its place in the
    /// breaker goes to the oldest waiting request, if any.
    private func connectionGone() {
        connectionCount -= 1
        connector.breaker.connectionClosed()
        if let next = nextWaiting(), !connect(for: next) {
            waiting.prepend(next)
        }
    }

    /// The oldest waiting request still waiting (others timed out or lost their client).
    private func nextWaiting() -> ProxyExchange? {
        while let exchange = waiting.popFirst() {
            if exchange.isWaitingForUpstream {
                return exchange
            }
        }
        return nil
    }

    /// The endpoint left its cluster: close idle connections now; busy ones
    /// close when their request finishes. Waiting requests still get the
    /// connections that come free.
    func drain() {
        draining = true
        let closing = idle
        idle.removeAll()
        for connection in closing {
            connection.abort()
        }
    }
}
