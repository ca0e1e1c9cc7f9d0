import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import MeshAPI
import MeshConfig
import MeshProxy
import Synchronization

/// The sidecar's one stream to the control plane: Hello, then a snapshot
/// whenever what the sidecar needs changes, each answered with an Ack or a
/// Nack, and heartbeats in between. A stream that fails is opened again
/// after a jittered backoff, for as long as the sidecar runs; meanwhile the
/// proxy keeps serving with the last snapshot it applied.
final class ControlPlaneSubscription: Sendable {
    /// What `apply` says of a snapshot: nil when applied, else why it was refused.
    typealias Apply = @Sendable (Swiftmesh_V1_Snapshot) async -> SnapshotRefusal?
    /// Whether the app is healthy, found within the given time.
    typealias AppHealth = @Sendable (Duration) async -> Bool
    /// What the proxy counted so far, sent with every heartbeat.
    typealias Traffic = @Sendable () async -> TrafficReport

    private struct State {
        /// The open stream's outgoing messages; finishing it ends the stream
        /// cleanly, which deregisters the instance.
        var outbox: AsyncStream<Swiftmesh_V1_SidecarMessage>.Continuation?
        /// From the last snapshot; nil until the first (the Hello itself registered the instance).
        var heartbeatInterval: Duration?
        /// Whether the open stream brought any snapshot.
        var receivedSnapshot = false
        var leaving = false
    }

    /// The largest snapshot taken: about a million instances.
    static let maxSnapshotBytes = 64 << 20

    private let hello: Swiftmesh_V1_Hello
    /// The called service of each outbound listener, by the listener's name.
    private let outboundServices: [String: String]
    private let logger: Logger
    private let state = Mutex(State())

    init(options: SidecarOptions, logger: Logger) {
        hello = .with {
            $0.sidecarID = options.sidecarID
            $0.instance = .with {
                $0.service = options.spec.service
                $0.address = options.spec.advertise.host
                $0.port = UInt32(options.spec.advertise.port)
                // Sidecars speak HTTP/2 to each other, whatever the app speaks.
                $0.protocol = UpstreamProtocol.http2.rawValue
                $0.labels = options.spec.labels
            }
            $0.upstreams = options.spec.upstreams.map(\.service)
            // An admin listener on every interface is called at the instance's address.
            $0.adminAddress = options.spec.admin.map { admin in
                ["0.0.0.0", "::"].contains(admin.host)
                    ? HostPort(host: options.spec.advertise.host, port: admin.port).description : admin.description
            } ?? ""
        }
        outboundServices = Dictionary(
            options.spec.upstreams.map { (SidecarConfig.outboundListener($0.service), $0.service) }, uniquingKeysWith: { $1 })
        self.logger = logger
    }

    /// Subscribes over `client`, and subscribes again after every failure,
    /// until `leave` ended the stream or the task is cancelled.
    func run(
        client: GRPCClient<HTTP2ClientTransport.Posix>, apply: @escaping Apply, appHealth: @escaping AppHealth,
        traffic: @escaping Traffic
    ) async {
        let discovery = Swiftmesh_V1_SidecarDiscovery.Client(wrapping: client)
        var backoff = ReconnectBackoff()
        while !Task.isCancelled {
            let receivedAny = await subscribeOnce(discovery, apply: apply, appHealth: appHealth, traffic: traffic)
            if state.withLock({ $0.leaving }) { return }
            if receivedAny { backoff.reset() }
            let wait = backoff.next()
            logger.warning("control plane stream ended; subscribing again", metadata: ["in": "\(wait)"])
            try? await Task.sleep(for: wait)
        }
    }

    /// Says Goodbye and ends the stream: the control plane deregisters the instance.
    func leave() {
        let outbox = state.withLock { state in
            state.leaving = true
            return state.outbox
        }
        outbox?.yield(.with { $0.goodbye = .init() })
        outbox?.finish()
    }

    /// The app's health, checked well within the heartbeat interval so that heartbeats stay on time.
    private func checkApp(_ appHealth: AppHealth) async -> Swiftmesh_V1_Health {
        let interval = state.withLock { $0.heartbeatInterval } ?? .seconds(1)
        return await appHealth(min(.seconds(1), interval / 2)) ? .healthy : .unhealthy
    }

    /// Sends a heartbeat with the app's health, checked now, and the proxy's traffic totals.
    private func beat(
        _ outbox: AsyncStream<Swiftmesh_V1_SidecarMessage>.Continuation, _ appHealth: AppHealth, _ traffic: Traffic
    ) async {
        let health = await checkApp(appHealth)
        let report = await traffic()
        let totals = report.totals.map { total in
            Swiftmesh_V1_TrafficTotals.with {
                $0.direction = total.direction.rawValue
                $0.service = total.service
                $0.answeredByProxy = total.answeredByProxy
                $0.requests = total.requests
                $0.failures = total.failures
                $0.bucketBoundsSeconds = total.bucketBoundsSeconds
                $0.bucketCounts = total.bucketCounts
            }
        }
        let routes = report.routeMatches.compactMap { match -> Swiftmesh_V1_RouteTotals? in
            guard let service = outboundServices[match.listener] else { return nil }
            return .with {
                $0.service = service
                $0.route = UInt32(clamping: match.route)
                $0.routesVersion = UInt64(clamping: match.routesVersion)
                $0.requests = match.requests
            }
        }
        outbox.yield(.with {
            $0.heartbeat = .with {
                $0.health = health
                $0.traffic = totals
                $0.routes = routes
            }
        })
    }

    /// One stream, from Hello to its end. Returns whether any snapshot arrived.
    private func subscribeOnce(
        _ discovery: Swiftmesh_V1_SidecarDiscovery.Client<HTTP2ClientTransport.Posix>, apply: @escaping Apply,
        appHealth: @escaping AppHealth, traffic: @escaping Traffic
    ) async -> Bool {
        let (outgoing, outbox) = AsyncStream.makeStream(of: Swiftmesh_V1_SidecarMessage.self)
        let alreadyLeaving = state.withLock { state in
            state.outbox = outbox
            state.receivedSnapshot = false
            return state.leaving
        }
        if alreadyLeaving { return false }
        var greeting = self.hello
        greeting.health = await checkApp(appHealth)
        let hello = greeting
        var options = CallOptions.defaults
        options.waitForReady = false
        // A snapshot of a large mesh is far over gRPC's default 4 MiB.
        options.maxResponseMessageBytes = Self.maxSnapshotBytes
        do {
            try await discovery.subscribe(options: options) { writer in
                try await writer.write(.with { $0.hello = hello })
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            guard let interval = self.state.withLock({ $0.heartbeatInterval }) else {
                                try await Task.sleep(for: .milliseconds(10))
                                continue
                            }
                            try await Task.sleep(for: interval)
                            await self.beat(outbox, appHealth, traffic)
                        }
                    }
                    for await message in outgoing {
                        try await writer.write(message)
                    }
                    group.cancelAll()
                }
            } onResponse: { response in
                // A Hello that said unhealthy (the sidecar had no configuration
                // yet) is followed up as soon as the first snapshot is applied,
                // so that callers get this instance without waiting a heartbeat.
                var beatAfterFirstAck = hello.health == .unhealthy
                for try await message in response.messages {
                    guard case .snapshot(let snapshot) = message.message else { continue }
                    self.state.withLock { state in
                        state.receivedSnapshot = true
                        if snapshot.heartbeatIntervalMs > 0 {
                            state.heartbeatInterval = .milliseconds(snapshot.heartbeatIntervalMs)
                        }
                    }
                    if let refusal = await apply(snapshot) {
                        self.logger.error("snapshot refused; serving with the previous one", metadata: [
                            "version": "\(snapshot.version)", "reason": "\(refusal)",
                        ])
                        outbox.yield(.with { $0.nack = .with { $0.version = snapshot.version; $0.reason = refusal.description } })
                    } else {
                        outbox.yield(.with { $0.ack = .with { $0.version = snapshot.version } })
                        if beatAfterFirstAck {
                            beatAfterFirstAck = false
                            await self.beat(outbox, appHealth, traffic)
                        }
                    }
                }
            }
        } catch {
            logger.warning("control plane stream failed", metadata: ["error": "\(error)"])
        }
        outbox.finish()
        return state.withLock { $0.receivedSnapshot }
    }
}
