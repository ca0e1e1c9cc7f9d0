import Logging
import MeshAPI
import MeshConfig
import MeshProxy

/// A proxy configured by the control plane: it starts with the instance's
/// listeners and no upstream endpoints, is not ready until the first
/// snapshot is applied, and applies each later snapshot as a reload (in-flight
/// requests finish on the configuration they started with).
public actor Sidecar {
    private let options: SidecarOptions
    private let server: ProxyServer
    private let subscription: ControlPlaneSubscription
    private let logger: Logger
    private var subscriptionTask: Task<Void, Never>?
    private var configured = false

    /// How long a leaving sidecar waits for the control plane to take its
    /// deregistration before it drains anyway.
    static let deregistrationWait: Duration = .seconds(2)

    public init(options: SidecarOptions, threads: Int, logger: Logger) {
        self.options = options
        self.logger = logger
        subscription = ControlPlaneSubscription(options: options, logger: logger)
        server = ProxyServer(
            config: SidecarConfig.build(options, upstreams: [:]), threads: threads, logger: logger,
            readinessHold: "waiting for the first configuration from the control plane at \(options.controlPlane)")
    }

    /// Binds the listeners and subscribes to the control plane.
    public func start() async throws {
        try await server.start()
        subscriptionTask = Task { [subscription] in
            await subscription.run { snapshot in await self.apply(snapshot) }
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
        let upstreams: [String: SidecarConfig.Upstream]
        switch SnapshotReader.upstreams(of: snapshot, calling: Set(options.upstreams.map(\.service))) {
        case .failure(let refusal):
            return refusal
        case .success(let found):
            upstreams = found
        }
        do {
            try await server.reload(SidecarConfig.build(options, upstreams: upstreams))
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
}
