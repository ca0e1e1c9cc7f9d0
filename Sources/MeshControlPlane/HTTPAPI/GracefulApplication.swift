import Hummingbird
import Logging
import ServiceLifecycle

extension ApplicationProtocol {
    /// Serves until the calling task is cancelled, then stops gracefully:
    /// the connections open finish their requests. Hummingbird takes a
    /// cancelled `run()` as a failure and logs an error for it, which a clean
    /// shutdown of the control plane must not do.
    func runUntilCancelled(logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: [self], logger: logger))
        // Not a child task: cancelling this one must not cancel the group, only start its graceful shutdown.
        let running = Task { try await group.run() }
        try await withTaskCancellationHandler {
            try await running.value
        } onCancel: {
            Task { await group.triggerGracefulShutdown() }
        }
    }
}
