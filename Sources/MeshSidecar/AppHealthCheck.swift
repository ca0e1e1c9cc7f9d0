import MeshConfig
import NIOCore
import NIOPosix

/// Whether the app accepts connections at its address: what the sidecar
/// reports with every heartbeat, so that callers stop getting an instance
/// whose app died while its sidecar lives (a crash, an OOM kill).
struct AppHealthCheck: Sendable {
    let app: HostPort

    /// Whether a connection opens within `timeout`.
    func isHealthy(timeout: Duration) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(timeout / .nanoseconds(1))))
                .connect(host: app.host, port: app.port)
                .get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}
