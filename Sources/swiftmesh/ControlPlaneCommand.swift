import ArgumentParser
import Logging
import MeshConfig
import MeshControlPlane

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftmesh control-plane`: the registry and the sidecar API, until
/// SIGTERM or SIGINT. Its state lives in `--data-dir`, so a restart keeps it.
struct ControlPlaneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-plane",
        abstract: "Run the control plane: the registry of services and instances, pushed to every sidecar.",
        discussion: """
            Sidecars subscribe on --listen (gRPC); the CLI (apply, get, delete, register, deregister, token) uses \
            the HTTP API on --http. Every change of instances or policies reaches the sidecars it concerns at once. \
            State is kept in --data-dir/state.sqlite; after a restart, sidecars that have not reconnected yet keep \
            their instances for 15s.

            The control plane is the mesh's certificate authority. Its root (ECDSA P-256) is created on first start \
            in --data-dir/ca (the key with mode 0600), or given with --ca-cert and --ca-key. Requests that change \
            the mesh need the admin token, created on first start in --data-dir/admin-token (mode 0600). --dev turns \
            that check off, for a developer's machine only.
            """
    )

    @Option(name: .long, help: "The sidecar API's address (gRPC).")
    var listen = HostPort(host: "127.0.0.1", port: 15010)

    @Option(name: .long, help: "The HTTP JSON API's address (swiftmesh apply, get, delete, register).")
    var http = HostPort(host: "127.0.0.1", port: 15080)

    @Option(name: .long, help: "Where the state (state.sqlite) is kept.")
    var dataDir = ".swiftmesh"

    @Option(name: .long, help: "How often sidecars send a heartbeat; an instance is removed after three missed ones.")
    var heartbeatInterval = DurationArgument(argument: "1s")!

    @Option(name: .long, help: "The trust domain of the mesh's identities (spiffe://<trust-domain>/service/<name>).")
    var trustDomain = CertificateAuthority.defaultTrustDomain

    @Option(name: .long, help: "The CA certificate (PEM) to use instead of the root kept in --data-dir/ca. Needs --ca-key.")
    var caCert: String?

    @Option(name: .long, help: "The CA's ECDSA P-256 private key (PEM, mode 0600). Needs --ca-cert.")
    var caKey: String?

    @Option(name: .long, help: "How long the certificates issued to sidecars are valid.")
    var certificateLifetime = DurationArgument(argument: "24h")!

    @Flag(name: .long, help: "Development mode: the HTTP API takes changes without the admin token. Never outside a developer's machine.")
    var dev = false

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        try CommandLineChecks.listenAddress(listen, option: "--listen")
        try CommandLineChecks.listenAddress(http, option: "--http")
        guard listen != http else {
            throw ValidationError("--listen and --http are both \(listen); give each its own port")
        }
        guard (caCert == nil) == (caKey == nil) else {
            throw ValidationError("--ca-cert and --ca-key go together: give both, or neither to use the root in --data-dir/ca")
        }
        // Sidecars renew two thirds in; shorter than 10s would be renewals back to back.
        guard certificateLifetime.duration >= .seconds(10) else {
            throw ValidationError("--certificate-lifetime: \(certificateLifetime.duration) is too short; use at least 10s")
        }
        guard heartbeatInterval.duration >= .milliseconds(10) else {
            throw ValidationError("--heartbeat-interval: \(heartbeatInterval.duration) is too short; use at least 10ms")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let logger = Logger(label: "swiftmesh.control-plane")
        let controlPlane: ControlPlane
        let store: ControlPlaneStore
        do {
            store = try ControlPlaneStore(directory: dataDir)
            controlPlane = try ControlPlane(
                settings: .init(
                    heartbeatIntervalMillis: heartbeatInterval.duration.nanoseconds / 1_000_000, trustDomain: trustDomain),
                store: store, logger: logger)
        } catch {
            logger.critical("could not open the state in --data-dir \(dataDir): \(error)")
            throw ExitCode(1)
        }
        let identity: MeshIdentity
        do {
            identity = try openIdentity(store: store, logger: logger)
        } catch {
            logger.critical("could not set up the mesh's identity: \(error)")
            throw ExitCode(1)
        }
        let signals = SignalEvents([SIGTERM, SIGINT])
        let stopRequests = signals.stream
        let server = ControlPlaneServer(
            controlPlane: controlPlane, identity: identity, grpcAddress: listen, httpAddress: http, logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                group.addTask {
                    for await _ in stopRequests { return }
                }
                // Whichever ends first: a signal, or the server failing.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            logger.critical("control plane stopped: \(error)")
            throw ExitCode(1)
        }
        // The signal sources live until here, whatever the optimizer sees.
        withExtendedLifetime(signals) {}
        logger.info("stopped")
    }

    /// The CA, the admin token (none with --dev) and the join tokens, from --data-dir.
    private func openIdentity(store: ControlPlaneStore, logger: Logger) throws -> MeshIdentity {
        let given = caCert.flatMap { cert in caKey.map { CertificateAuthority.GivenRoot(certificatePath: cert, keyPath: $0) } }
        let authority = try CertificateAuthority.open(
            directory: dataDir, trustDomain: trustDomain,
            certificateLifetime: .nanoseconds(certificateLifetime.duration.nanoseconds), given: given)
        logger.info("certificate authority ready", metadata: [
            "trustDomain": "\(trustDomain)", "root": "\(given?.certificatePath ?? dataDir + "/ca/root.pem")",
        ])
        let adminToken: AdminToken?
        if dev {
            adminToken = nil
            logger.warning(
                "DEVELOPMENT MODE (--dev): the HTTP API takes changes from anyone who can reach it, and sidecars get certificates without a join token. Never run --dev outside a developer's machine.")
        } else {
            adminToken = try AdminToken.open(directory: dataDir)
            logger.info("changes through the HTTP API need the admin token", metadata: [
                "file": "\(dataDir)/\(AdminToken.fileName)",
            ])
        }
        return MeshIdentity(authority: authority, adminToken: adminToken, joinTokens: JoinTokens(store: store))
    }
}
