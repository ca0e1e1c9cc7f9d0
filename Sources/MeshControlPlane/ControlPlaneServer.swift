import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import MeshConfig

/// The control-plane process: the sidecar API (gRPC over TLS, with a
/// certificate from the mesh's root, so that sidecars know they talk to this
/// control plane before they send a join token or take a trust bundle) on `grpcAddress`, the
/// HTTP JSON API on `httpAddress`, registry expiry, and the changes other
/// replicas make to a shared store, until `run`'s task is cancelled.
public struct ControlPlaneServer: Sendable {
    public let controlPlane: ControlPlane
    public let store: (any ControlPlaneStore)?
    public let identity: MeshIdentity
    public let grpcAddress: HostPort
    public let httpAddress: HostPort
    /// The sidecar-injection webhook and its HTTPS address; nil: none.
    public let injection: (webhook: InjectionWebhook, address: HostPort)?
    private let logger: Logger

    public init(
        controlPlane: ControlPlane, store: (any ControlPlaneStore)?, identity: MeshIdentity, grpcAddress: HostPort,
        httpAddress: HostPort, injection: (webhook: InjectionWebhook, address: HostPort)? = nil, logger: Logger
    ) {
        self.injection = injection
        self.controlPlane = controlPlane
        self.store = store
        self.identity = identity
        self.grpcAddress = grpcAddress
        self.httpAddress = httpAddress
        self.logger = logger
    }

    /// Serves until cancelled; throws when the address cannot be bound.
    /// Cancelling ends every sidecar stream without deregistering anyone, so
    /// a restarted control plane finds the same instances.
    public func run() async throws {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        // A sidecar whose host vanished without closing its connection is let
        // go within 15 s of its last message; sidecars may ping as often.
        config.connection.keepalive = .init(
            time: .seconds(10), timeout: .seconds(5),
            clientBehavior: .init(minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: true))
        let serving = try identity.authority.servingCertificate()
        let transport = HTTP2ServerTransport.Posix(
            address: grpcAddress.host.contains(":")
                ? .ipv6(host: grpcAddress.host, port: grpcAddress.port)
                : .ipv4(host: grpcAddress.host, port: grpcAddress.port),
            transportSecurity: .tls(
                certificateChain: [.bytes(Array(serving.certificatePEM.utf8), format: .pem)],
                privateKey: .bytes(Array(serving.privateKeyPEM.utf8), format: .pem)),
            config: config)
        let server = GRPCServer(transport: transport, services: [
            SidecarDiscoveryService(controlPlane: controlPlane),
            IdentityService(identity: identity, logger: logger),
        ])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            group.addTask { await controlPlane.runExpiry() }
            if let store {
                group.addTask { try await store.follow(controlPlane) }
            }
            if let injection {
                group.addTask { [logger] in try await injection.webhook.run(address: injection.address, logger: logger) }
            }
            group.addTask { [controlPlane, identity, httpAddress, logger] in
                try await ControlPlaneHTTPAPI(controlPlane: controlPlane, identity: identity)
                    .run(address: httpAddress, logger: logger)
            }
            let bound = try await transport.listeningAddress
            logger.info("sidecar API listening", metadata: ["address": "\(ListeningAddress.text(bound))"])
            try await group.next()
            group.cancelAll()
        }
    }
}
