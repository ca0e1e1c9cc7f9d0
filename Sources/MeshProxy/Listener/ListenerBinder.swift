import Logging
import MeshConfig
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// A bound listener and what drains it.
struct BoundListener: Sendable {
    let config: ListenerConfig
    let channel: Channel
    /// Stops accepting and asks every open connection to finish and close.
    let quiescing: ServerQuiescingHelper
}

/// Binds listeners: accepts connections on the loop the group picks, counts
/// them, and starts each with protocol detection.
enum ListenerBinder {
    static func bind(
        _ listener: ListenerConfig, group: EventLoopGroup, workers: [LoopWorker]
    ) async throws -> BoundListener {
        let quiescing = ServerQuiescingHelper(group: group)
        let name = listener.name
        let maxHeaderBytes = listener.limits.maxRequestHeaderBytes
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { server in
                server.eventLoop.makeCompletedFuture {
                    try server.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: server))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let worker = workers.first(where: { $0.eventLoop === channel.eventLoop }) else {
                        throw ListenerError.noWorker
                    }
                    let label = worker.stats.label(name)
                    worker.stats.connectionOpened(listener: label)
                    worker.connectionOpened(channel)
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        worker.stats.connectionClosed(listener: label)
                        worker.connectionClosed(channel)
                    }
                    let clientIP = channel.remoteAddress?.ipAddress
                    // From the routing table the loop has now, so a reload applies to new connections.
                    // A listener a reload removed may accept until it stops: without
                    // its settings (its TLS among them) the connection is refused.
                    guard let compiled = worker.routing.listeners[name] else {
                        throw ListenerError.removed
                    }
                    let idleTimeout = compiled.idleTimeout
                    let limits = compiled.downstreamLimits
                    let detector = ProtocolDetector(
                        idleTimeout: idleTimeout, requestHeadersTimeout: limits.requestHeadersTimeout
                    ) { context, detected, firstByte in
                        // The first request's bytes: any TLS handshake is over.
                        let isTLS = compiled.tls != nil && PeerIdentity.isTLS(context.channel)
                        let client = isTLS ? PeerIdentity.ofClient(on: context.channel) : nil
                        let info = DownstreamConnectionInfo(
                            listenerName: name, listenerLabel: label, direction: compiled.direction, clientIP: clientIP, isHTTP2: detected == .http2,
                            idleTimeout: idleTimeout, limits: limits, isTLS: isTLS, client: client,
                            callerLabel: worker.stats.label(client?.metricLabel ?? PeerIdentity.anonymousMetricLabel))
                        switch detected {
                        case .http1:
                            try DownstreamPipeline.installHTTP1(
                                after: context, connection: info, worker: worker, headStarted: firstByte)
                        case .http2:
                            try DownstreamPipeline.installHTTP2(
                                after: context, connection: info, worker: worker,
                                maxHeaderListSize: maxHeaderBytes)
                        }
                    }
                    detector.onRequestHeadersTimeout = {
                        worker.stats.limitReached(listener: label, .requestHeadersTimeout)
                    }
                    switch compiled.tls {
                    case nil:
                        break
                    case let tls? where tls.mode == .strict:
                        try channel.pipeline.syncOperations.addHandlers(
                            NIOSSLServerHandler(context: tls.context),
                            TLSHandshakeCounter(stats: worker.stats, listener: label))
                    case let tls?:
                        try channel.pipeline.syncOperations.addHandler(PlaintextOrTLSDetector(
                            context: tls.context, handshakeCounter: TLSHandshakeCounter(stats: worker.stats, listener: label)))
                    }
                    try channel.pipeline.syncOperations.addHandler(detector)
                }
            }
            .bind(host: listener.listen.host, port: listener.listen.port)
            .get()
        return BoundListener(config: listener, channel: channel, quiescing: quiescing)
    }
}

enum ListenerError: Error {
    /// Every loop of the group has a worker; reaching this is a bug.
    case noWorker
    /// The listener is no longer in the published config (a reload removed it).
    case removed
}
