import NIOCore

/// Keep-alive HTTP/1.1 connections from one event loop to one endpoint. Idle
/// connections are reused most-recently-used first, so a burst's extra
/// connections age out while the warm ones keep serving. When the cluster is
/// at its circuit breaker's `maxConnections`, requests wait (as pending
/// requests) for a connection of this pool to come free; the pool counts
/// them in the breaker while they wait.
package final class HTTP1ConnectionPool {
    /// Idle connections kept per endpoint per loop; more are closed on release.
    package static let maxIdleConnections = 128

    package let dialer: EndpointDialer
    private var idle: [HTTP1UpstreamHandler] = []
    /// Requests waiting for a connection of this pool.
    private var waiting: PendingRequests
    /// Connections of this pool, open or opening; each counts in the breaker.
    private var connectionCount = 0
    /// Connections of this pool still being opened.
    private var connecting = 0
    private var draining = false

    package init(dialer: EndpointDialer) {
        self.dialer = dialer
        waiting = PendingRequests(breaker: dialer.breaker)
    }

    /// Hands `request` a connection: an idle one, or the next one to open
    /// or come free. A connection being opened serves whichever request has
    /// waited longest when it is ready, not the request that caused it, so a
    /// request that moves on (a retry to another endpoint, a timeout) leaves
    /// nothing behind that could still call it.
    package func acquire(for request: any UpstreamRequest) {
        while let connection = idle.popLast() {
            if connection.isActive {
                connection.attach(request)
                return
            }
        }
        guard waiting.enqueue(request) else { return }
        if connecting < waiting.count {
            connect()
        }
    }

    /// Opens a connection, unless the cluster is at `maxConnections` and this
    /// pool already has one: waiting requests then get connections that come free.
    private func connect() {
        guard dialer.breaker.tryOpenConnection(force: connectionCount == 0) else { return }
        connectionCount += 1
        connecting += 1
        dialer.connect()
            .assumeIsolated()
            .whenComplete { result in
                self.connecting -= 1
                switch result {
                case .success(let channel):
                    do {
                        // `handlerAdded` reports the connection through `connected`.
                        try channel.pipeline.syncOperations.addHandler(HTTP1UpstreamHandler(pool: self))
                    } catch {
                        channel.close(promise: nil)
                        self.connectFailed()
                    }
                case .failure:
                    self.connectFailed()
                }
            }
    }

    /// A new connection is ready for the request that has waited longest.
    package func connected(_ connection: HTTP1UpstreamHandler) {
        handOver(connection)
    }

    /// A connection attempt failed: the request that has waited longest
    /// fails with it (each waiting request caused one attempt).
    private func connectFailed() {
        waiting.next()?.failed(.connectFailure)
        connectionGone()
    }

    /// A connection finished a request cleanly and may serve another: the
    /// oldest waiting request, else it idles.
    package func release(_ connection: HTTP1UpstreamHandler) {
        guard connection.isActive else {
            connection.abort()
            return
        }
        if !waiting.isEmpty {
            // Handed over on the loop's next turn: the read that finished the
            // response must complete first, so that bytes past that response
            // close the connection instead of answering the next request.
            dialer.eventLoop.assumeIsolated().execute { self.handOver(connection) }
            return
        }
        keepIdle(connection)
    }

    private func handOver(_ connection: HTTP1UpstreamHandler) {
        // Closed meanwhile: `connectionClosed` gave its place to a waiter.
        guard connection.isActive else { return }
        if let next = waiting.next() {
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

    /// `request` ended while waiting (timeout, client gone): it leaves the queue.
    package func stopWaiting(_ request: any UpstreamRequest) {
        waiting.remove(request)
    }

    package func connectionClosed(_ connection: HTTP1UpstreamHandler) {
        idle.removeAll { $0 === connection }
        connectionGone()
    }

    /// A connection of this pool closed: its place in the breaker may open
    /// a connection for requests still waiting.
    private func connectionGone() {
        connectionCount -= 1
        dialer.breaker.connectionClosed()
        if connecting < waiting.count {
            connect()
        }
    }

    /// The endpoint left its cluster: close idle connections now; busy ones
    /// close when their request finishes. Waiting requests still get the
    /// connections that come free.
    package func drain() {
        draining = true
        let closing = idle
        idle.removeAll()
        for connection in closing {
            connection.abort()
        }
    }
}
