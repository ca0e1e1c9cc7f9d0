import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging

/// Runs example gRPC services on one address, in HTTP/2 cleartext: the
/// instance's sidecar, beside it, does TLS for it.
public enum ExampleServer {
    /// One instance of `service` with the standard health service beside it
    /// (answering SERVING for `name`), until cancelled.
    public static func serveInstance(
        of service: some RegistrableRPCService, named name: String, host: String, port: Int, logger: Logger
    ) async throws {
        try await serve(host: host, port: port, services: [service, HealthService(services: [name])], logger: logger)
    }

    /// Serves until cancelled, then shuts down gracefully: no new calls,
    /// and the ones running finish.
    public static func serve(
        host: String, port: Int, services: [any RegistrableRPCService], logger: Logger
    ) async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
            transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: services)
        // An unstructured task, so that cancelling this function does not
        // cancel `serve()` itself: a call arriving while a cancelled server
        // tears down trips a precondition in NIO's stream writer (seen: the
        // process crashed on SIGTERM under load). A graceful shutdown
        // refuses new calls first.
        let serving = Task { try await server.serve() }
        try await withTaskCancellationHandler {
            let address = try await transport.listeningAddress
            if let bound = address.ipv4?.port ?? address.ipv6?.port {
                logger.info("serving gRPC", metadata: ["address": "\(host):\(bound)"])
            }
            try await serving.value
        } onCancel: {
            server.beginGracefulShutdown()
        }
    }
}
