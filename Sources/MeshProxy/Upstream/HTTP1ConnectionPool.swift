import NIOCore

/// Keep-alive HTTP/1.1 connections from one event loop to one endpoint. Idle
/// connections are reused most-recently-used first, so a burst's extra
/// connections age out while the warm ones keep serving.
final class HTTP1ConnectionPool {
    /// Idle connections kept per endpoint per loop; more are closed on release.
    static let maxIdleConnections = 128

    let connector: EndpointConnector
    private var idle: [HTTP1UpstreamHandler] = []
    private var draining = false

    init(connector: EndpointConnector) {
        self.connector = connector
    }

    /// Hands `exchange` a connection: an idle one, or a new one once connected.
    func acquire(for exchange: ProxyExchange) {
        while let connection = idle.popLast() {
            if connection.isActive {
                connection.attach(exchange)
                return
            }
        }
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
                        exchange.upstreamFailed(.connectFailure)
                    }
                case .failure:
                    exchange.upstreamFailed(.connectFailure)
                }
            }
    }

    /// A connection finished a request cleanly and may serve another.
    func release(_ connection: HTTP1UpstreamHandler) {
        guard !draining, idle.count < Self.maxIdleConnections, connection.isActive else {
            connection.abort()
            return
        }
        idle.append(connection)
    }

    func connectionClosed(_ connection: HTTP1UpstreamHandler) {
        idle.removeAll { $0 === connection }
    }

    /// The endpoint left its cluster: close idle connections now; busy ones
    /// close when their request finishes.
    func drain() {
        draining = true
        let closing = idle
        idle.removeAll()
        for connection in closing {
            connection.abort()
        }
    }
}
