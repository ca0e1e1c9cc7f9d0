import Logging
import MeshAPI
import MeshConfig
import MeshProxy

/// A proxy configured by the control plane: it starts with the instance's
/// listeners and no upstream endpoints, is not ready until the first
/// snapshot is applied, and applies each later snapshot as a reload (in-flight
/// requests finish on the configuration they started with). It checks its
/// app for every heartbeat, and finds out which protocol the app speaks
/// unless told.
public actor Sidecar {
    private let options: SidecarOptions
    private let server: ProxyServer
    private let subscription: ControlPlaneSubscription
    private let logger: Logger
    private var subscriptionTask: Task<Void, Never>?
    private var configured = false
    private let probe: AppProbe
    /// The app's protocol: given, or found by the probe; nil until then.
    private var appProtocol: UpstreamProtocol?
    /// Whether the last probe found the app up; nil before the first.
    private var appHealthy: Bool?
    /// The services of the last snapshot applied; nil before the first.
    private var upstreams: [String: SidecarConfig.Upstream]?

    /// What the app is taken to speak until the probe finds out: nothing
    /// reaches the app before then, since the instance is registered healthy
    /// only once the app answers.
    static let assumedAppProtocol = UpstreamProtocol.http1

    /// How long a leaving sidecar waits for the control plane to take its
    /// deregistration before it drains anyway.
    static let deregistrationWait: Duration = .seconds(2)

    public init(options: SidecarOptions, threads: Int, logger: Logger) {
        self.options = options
        self.logger = logger
        subscription = ControlPlaneSubscription(options: options, logger: logger)
        probe = AppProbe(app: options.app)
        appProtocol = options.appProtocol
        server = ProxyServer(
            config: SidecarConfig.build(
                options, upstreams: [:], appProtocol: options.appProtocol ?? Self.assumedAppProtocol),
            threads: threads, logger: logger,
            readinessHold: "waiting for the first configuration from the control plane at \(options.controlPlane)")
    }

    /// Binds the listeners and subscribes to the control plane.
    public func start() async throws {
        try await server.start()
        subscriptionTask = Task { [subscription] in
            await subscription.run { snapshot in
                await self.apply(snapshot)
            } appHealth: { timeout in
                await self.checkApp(timeout: timeout)
            }
        }
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
        await server.drain()
    }

    private func apply(_ snapshot: Swiftmesh_V1_Snapshot) async -> SnapshotRefusal? {
        let found: [String: SidecarConfig.Upstream]
        switch SnapshotReader.upstreams(of: snapshot, calling: Set(options.upstreams.map(\.service))) {
        case .failure(let refusal):
            return refusal
        case .success(let upstreams):
            found = upstreams
        }
        do {
            try await reload(with: found)
        } catch {
            return SnapshotRefusal("the proxy could not apply it: \(error)")
        }
        if !configured {
            configured = true
            await server.releaseReadinessHold()
            logger.info("first configuration from the control plane applied; ready", metadata: ["version": "\(snapshot.version)"])
        }
        return nil
    }

    private func reload(with found: [String: SidecarConfig.Upstream]) async throws {
        upstreams = found
        try await server.reload(SidecarConfig.build(
            options, upstreams: found, appProtocol: appProtocol ?? Self.assumedAppProtocol))
    }

    /// Probes the app: whether it is healthy, and, until known, its
    /// protocol (the configuration follows when it is found). Logs changes.
    private func checkApp(timeout: Duration) async -> Bool {
        let result = await probe.probe(timeout: timeout, detectProtocol: appProtocol == nil)
        let healthy = result != .down
        if case .up(let found?) = result, appProtocol == nil {
            appProtocol = found
            logger.info("the app speaks \(found)", metadata: ["app": "\(options.app)"])
            if let upstreams {
                try? await reload(with: upstreams)
            }
        }
        if appHealthy != healthy && !(appHealthy == nil && healthy) {
            if healthy {
                logger.info("the app accepts connections again; the instance is reported healthy")
            } else {
                logger.warning("the app does not accept connections; the instance is reported unhealthy",
                               metadata: ["app": "\(options.app)"])
            }
        }
        appHealthy = healthy
        return healthy
    }
}
