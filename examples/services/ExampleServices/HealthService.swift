import ExampleAPI
import GRPCCore

/// The standard gRPC health service (`grpc.health.v1.Health`) for a process
/// whose services are all up while it runs: the whole server ("") and each
/// named service answer SERVING; other names are unknown.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    /// Fully qualified names, such as `example.alive.v1.AliveService`.
    let services: Set<String>

    public init(services: Set<String>) {
        self.services = services
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard request.service.isEmpty || services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(request.service)")
        }
        return .with { $0.status = .serving }
    }

    /// The status now, then nothing until the caller leaves (the sleep
    /// throws when the call is cancelled): it never changes while the process runs.
    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let known = request.service.isEmpty || services.contains(request.service)
        try await response.write(.with { $0.status = known ? .serving : .serviceUnknown })
        try await Task.sleep(for: .seconds(365 * 24 * 3600))
    }
}
