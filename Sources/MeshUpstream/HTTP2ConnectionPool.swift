import MeshHTTP2
import NIOCore
import NIOHTTP2

/// HTTP/2 connections from one event loop to one endpoint. Requests become
/// streams on a connection with room under the peer's concurrency limit; a
/// new connection opens only when every connection is full, and the cluster
/// is under its circuit breaker's `maxConnections`. Requests waiting for a
/// stream count as pending requests, which the pool takes and gives back.
package final class HTTP2ConnectionPool {
    private let dialer: EndpointDialer
    private var connections: [HTTP2Connection] = []
    /// Requests waiting for a connection to open or for a stream slot.
    private var waiting: PendingRequests
    private var connecting = 0
    private var draining = false

    package init(dialer: EndpointDialer) {
        self.dialer = dialer
        waiting = PendingRequests(breaker: dialer.breaker)
    }

    package func acquire(for request: any UpstreamRequest) {
        if let connection = connections.first(where: \.hasCapacity) {
            connection.openStream(for: request)
            return
        }
        guard waiting.enqueue(request) else { return }
        // One connection in progress is enough for the first assumed-limit's worth of waiters.
        if connecting * HTTP2Connection.assumedMaxConcurrentStreams < waiting.count {
            connect()
        }
    }

    /// Opens another connection, unless the cluster is at `maxConnections`
    /// and this pool already has one: waiting requests then get the streams
    /// that finish.
    private func connect() {
        let hasUsable = connecting > 0 || connections.contains(where: \.acceptsStreams)
        guard dialer.breaker.tryOpenConnection(force: !hasUsable) else { return }
        connecting += 1
        dialer.connect()
            .assumeIsolated()
            .whenComplete { result in
                self.connecting -= 1
                switch result {
                case .success(let channel):
                    do {
                        try self.configure(channel)
                    } catch {
                        channel.close(promise: nil)
                        self.dialer.breaker.connectionClosed()
                        self.failWaiting()
                    }
                case .failure:
                    self.dialer.breaker.connectionClosed()
                    self.failWaiting()
                }
            }
    }

    private func configure(_ channel: Channel) throws {
        // Server push is disabled in our SETTINGS, so the endpoint opens no streams.
        let connection = HTTP2Connection(pool: self, flushBatch: dialer.flushBatch, idleTimeout: dialer.idleTimeout)
        try channel.pipeline.syncOperations.addHandlers([
            HTTP2ConnectionCodec(role: .client, settings: UpstreamHTTP2Settings.local),
            connection,
        ])
        connections.append(connection)
        serveWaiting()
        if draining {
            // Opened for requests that chose this endpoint before it left:
            // they are served, then the connection closes.
            connection.closeGracefully()
        }
    }

    /// Gives waiting requests the stream slots that are free.
    package func capacityFreed() {
        serveWaiting()
    }

    private func serveWaiting() {
        while !waiting.isEmpty, let connection = connections.first(where: \.hasCapacity) {
            guard let request = waiting.next() else { break }
            connection.openStream(for: request)
        }
        if !waiting.isEmpty && connecting == 0 {
            connect()
        }
    }

    /// `request` ended while waiting (timeout, client gone): it leaves the queue.
    package func stopWaiting(_ request: any UpstreamRequest) {
        waiting.remove(request)
    }

    private func failWaiting() {
        // Others may still be connecting; only give up when nothing is left to wait for.
        guard connecting == 0, !connections.contains(where: \.hasCapacity) else { return }
        for request in waiting.removeAll() {
            request.failed(.connectFailure)
        }
    }

    package func connectionClosed(_ connection: HTTP2Connection) {
        connections.removeAll { $0 === connection }
        dialer.breaker.connectionClosed()
        serveWaiting()
    }

    /// The endpoint left its cluster: no new streams; connections close once
    /// their streams finish. Requests already waiting get a connection of
    /// their own.
    package func drain() {
        draining = true
        for connection in connections {
            connection.closeGracefully()
        }
        serveWaiting()
    }
}

package enum UpstreamHTTP2Settings {
    /// Per-stream receive window. What an endpoint may send that its client
    /// has not read yet is at most this per stream beyond the client's
    /// connection buffer limit (credit stops once the client's side is
    /// full, but what was granted may still come), so it is kept small:
    /// 256 KiB still carries a stream at hundreds of MB/s on a LAN.
    package static let streamWindow = 256 * 1024

    /// The upstream connections' SETTINGS: no push, the stream window, and
    /// header lists up to 1 MiB (the downstream side enforces its own limit).
    package static let local = HTTP2LocalSettings(
        maxConcurrentStreams: nil, initialWindowSize: streamWindow, maxHeaderListSize: 1 << 20, disablePush: true)
}
