import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import MeshAPI
import MeshConfig
import MeshProxy

/// A proxy configured by the control plane. It starts with its outbound
/// listeners and no upstream endpoints, asks the control plane's certificate
/// authority for its service's certificate, then binds its inbound listener
/// (mutual TLS, denying every request until the service's authorization is
/// known) and subscribes; it is not ready, and reports its instance
/// unhealthy, until the first snapshot is applied. Each later snapshot, and
/// each renewed certificate, is applied as a reload: in-flight requests and
/// open connections finish on the configuration they started with. Reloads
/// run one at a time, and what they apply is kept only once applied. It
/// checks its app for every heartbeat, and finds out which protocol the app
/// speaks unless told.
public actor Sidecar {
    private let options: SidecarOptions
    private let server: ProxyServer
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let subscription: ControlPlaneSubscription
    private let logger: Logger
    private var clientTask: Task<Void, Never>?
    private var identityTask: Task<Void, Never>?
    private var subscriptionTask: Task<Void, Never>?
    private var configured = false
    private let probe: AppProbe
    /// The app's protocol: given, or found by the probe; nil until then.
    private var appProtocol: UpstreamProtocol?
    /// Whether the last probe found the app up; nil before the first.
    private var appHealthy: Bool?
    /// The services of the last snapshot applied; nil before the first.
    private var upstreams: [String: SidecarConfig.Upstream]?
    /// The service's certificate in use; nil until the first arrives.
    private var certificate: WorkloadCertificate?
    /// The service's AuthorizationPolicy from the last snapshot applied; nil: none.
    private var authorization: AuthorizationPolicy?
    /// Whether a reload runs; the others wait in `reloadQueue`, in order.
    private var reloading = false
    private var reloadQueue: [CheckedContinuation<Void, Never>] = []
    private let failureSink: AsyncStream<String>.Continuation

    /// Why the sidecar cannot go on (its inbound listener could not be bound):
    /// yields once, and the process should exit.
    public nonisolated let failures: AsyncStream<String>

    /// What the app is taken to speak until the probe finds out: nothing
    /// reaches the app before then, since the instance is registered healthy
    /// only once the app answers.
    static let assumedAppProtocol = UpstreamProtocol.http1

    /// How long a leaving sidecar waits for the control plane to take its
    /// deregistration before it drains anyway.
    static let deregistrationWait: Duration = .seconds(2)

    public init(options: SidecarOptions, threads: Int, logger: Logger) throws {
        self.options = options
        self.logger = logger
        client = try ControlPlaneClient.make(options.controlPlane, rootPEM: options.controlPlaneRootPEM)
        subscription = ControlPlaneSubscription(options: options, logger: logger)
        probe = AppProbe(app: options.spec.app)
        appProtocol = options.spec.appProtocol
        (failures, failureSink) = AsyncStream.makeStream()
        server = ProxyServer(
            config: SidecarConfig.build(
                options, upstreams: [:], appProtocol: options.spec.appProtocol ?? Self.assumedAppProtocol, certificate: nil),
            threads: threads, logger: logger,
            readinessHold: "waiting for the service's certificate from the control plane at \(options.controlPlane)",
            explainedByControlPlane: true)
    }

    /// Binds the outbound listeners and the admin listener, then gets the
    /// certificate, binds the inbound listener and subscribes, in the background.
    public func start() async throws {
        try await server.start()
        clientTask = Task { [client, logger] in
            do {
                try await client.runConnections()
            } catch {
                logger.error("control plane client stopped", metadata: ["error": "\(error)"])
            }
        }
        identityTask = Task { await self.runIdentity() }
    }

    /// SIGTERM: deregisters first, so that callers stop choosing this
    /// instance, then drains.
    public func stop() async {
        subscription.leave()
        if let task = subscriptionTask {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await task.value }
                group.addTask { try? await Task.sleep(for: Self.deregistrationWait) }
                await group.next()
                task.cancel()
                group.cancelAll()
            }
        }
        identityTask?.cancel()
        client.beginGracefulShutdown()
        await clientTask?.value
        await server.drain()
    }

    /// The first certificate, the inbound listener and the subscription; then
    /// every renewal, for as long as the sidecar runs.
    private func runIdentity() async {
        let renewal = CertificateRenewal(
            client: client, service: options.spec.service, joinToken: options.joinToken, logger: logger)
        let controlPlane = options.controlPlane
        guard let first = await renewal.obtain(failed: { [server] reason in
            await server.holdReadiness("no certificate from the control plane at \(controlPlane) yet: \(reason)")
        }) else { return }
        do {
            try await adopt(first)
        } catch {
            logger.critical("the inbound listener could not start", metadata: ["error": "\(error)"])
            failureSink.yield("the inbound listener could not start: \(error)")
            return
        }
        await server.holdReadiness("waiting for the first configuration from the control plane at \(controlPlane)")
        subscriptionTask = Task { [subscription, client] in
            await subscription.run(client: client) { snapshot in
                await self.apply(snapshot)
            } appHealth: { timeout in
                await self.checkApp(timeout: timeout)
            } traffic: { [server] in
                await server.trafficReport()
            }
        }
        await renewal.keepRenewed(first) { renewed in
            do {
                try await self.adopt(renewed)
            } catch {
                self.logger.error("the renewed certificate could not be applied; the previous one stays in use",
                                  metadata: ["error": "\(error)"])
            }
        }
    }

    /// Puts `certificate` in use: new connections, inbound and outbound, use
    /// it; open ones finish with the one they started with.
    private func adopt(_ certificate: WorkloadCertificate) async throws {
        try await reload { $0.certificate = certificate }
    }

    private func apply(_ snapshot: Swiftmesh_V1_Snapshot) async -> SnapshotRefusal? {
        let found: [String: SidecarConfig.Upstream]
        let foundAuthorization: AuthorizationPolicy?
        switch (SnapshotReader.upstreams(of: snapshot, calling: Set(options.spec.upstreams.map(\.service))),
                SnapshotReader.authorization(of: snapshot, service: options.spec.service)) {
        case (.failure(let refusal), _), (_, .failure(let refusal)):
            return refusal
        case (.success(let upstreams), .success(let policy)):
            found = upstreams
            foundAuthorization = policy
        }
        let previousAuthorization = authorization
        let wasConfigured = configured
        do {
            try await reload {
                $0.upstreams = found
                $0.authorization = foundAuthorization
                $0.configured = true
            }
        } catch {
            return SnapshotRefusal("the proxy could not apply it: \(error)")
        }
        if previousAuthorization != foundAuthorization || !wasConfigured {
            logger.info("authorization policy applied", metadata: [
                "default": "\(foundAuthorization?.defaultAction.rawValue ?? "allow (no policy)")",
                "rules": "\(foundAuthorization?.rules.count ?? 0)",
            ])
        }
        if !wasConfigured {
            await server.releaseReadinessHold()
            logger.info("first configuration from the control plane applied; ready", metadata: ["version": "\(snapshot.version)"])
        }
        return nil
    }

    /// What the proxy's configuration is built from.
    private struct Inputs {
        var upstreams: [String: SidecarConfig.Upstream]?
        var authorization: AuthorizationPolicy?
        var certificate: WorkloadCertificate?
        var appProtocol: UpstreamProtocol?
        var configured: Bool
    }

    /// Reloads the proxy with the current inputs changed by `change`, and
    /// keeps the change only once the proxy took it. One reload at a time, in
    /// the order asked, each starting from what the one before left.
    private func reload(_ change: (inout Inputs) -> Void) async throws {
        while reloading {
            await withCheckedContinuation { reloadQueue.append($0) }
        }
        reloading = true
        defer {
            reloading = false
            if !reloadQueue.isEmpty {
                reloadQueue.removeFirst().resume()
            }
        }
        var inputs = Inputs(
            upstreams: upstreams, authorization: authorization, certificate: certificate, appProtocol: appProtocol,
            configured: configured)
        change(&inputs)
        try await server.reload(SidecarConfig.build(
            options, upstreams: inputs.upstreams ?? [:], appProtocol: inputs.appProtocol ?? Self.assumedAppProtocol,
            certificate: inputs.certificate,
            // Until the first snapshot says what the service's policy is, nobody is let in.
            authorization: inputs.configured ? inputs.authorization : SidecarConfig.denyAll(service: options.spec.service)))
        upstreams = inputs.upstreams
        authorization = inputs.authorization
        certificate = inputs.certificate
        appProtocol = inputs.appProtocol
        configured = inputs.configured
    }

    /// Probes the app: whether it is healthy, and, until known, its
    /// protocol (the configuration follows when it is found). Logs changes.
    /// The instance is reported healthy only once the sidecar is configured:
    /// before its first snapshot it would turn every caller away.
    private func checkApp(timeout: Duration) async -> Bool {
        let result = await probe.probe(timeout: timeout, detectProtocol: appProtocol == nil)
        let healthy = result != .down
        if case .up(let found?) = result, appProtocol == nil {
            logger.info("the app speaks \(found)", metadata: ["app": "\(options.spec.app)"])
            do {
                try await reload { $0.appProtocol = found }
            } catch {
                logger.error("the app's protocol could not be applied", metadata: ["error": "\(error)"])
            }
        }
        if appHealthy != healthy && !(appHealthy == nil && healthy) {
            if healthy {
                logger.info("the app accepts connections again; the instance is reported healthy")
            } else {
                logger.warning("the app does not accept connections; the instance is reported unhealthy",
                               metadata: ["app": "\(options.spec.app)"])
            }
        }
        appHealthy = healthy
        return healthy && configured
    }
}
