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

            With --store etcd://HOST:PORT[,HOST:PORT...], the state, the CA root and the admin token live in etcd \
            instead, and every control plane started with the same --store serves sidecars at once: each sees the \
            others' changes within a second. A replica's sidecars' instances outlive it by 10s, time for them to \
            reconnect to another replica.

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

    @Option(name: .long, help: "Where the state (state.sqlite) is kept; with --store etcd://, only the admin token, for the CLI.")
    var dataDir = ".swiftmesh"

    @Option(name: .long, help: ArgumentHelp(
        "Where the state lives: sqlite (in --data-dir), or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (v3 API, shared by replicas; default prefix /swiftmesh/).",
        valueName: "location"))
    var store = "sqlite"

    @Option(name: .long, help: ArgumentHelp(
        "With --store etcd://: how long the instances of a replica that died outlive it, time for its sidecars to reconnect to another.",
        valueName: "duration"))
    var etcdLeaseTTL = DurationArgument(argument: "20s")!

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

    @Option(name: .long, help: ArgumentHelp(
        "Serve the Kubernetes sidecar-injection webhook (HTTPS, POST /inject) at this address (default: none).",
        valueName: "host:port"))
    var webhook: HostPort?

    @Option(name: .long, help: "A DNS name in the webhook's certificate, the one the Kubernetes API server calls it by. Repeatable.")
    var webhookDnsName: [String] = ["swiftmesh-control-plane.swiftmesh-system.svc"]

    @Option(name: .long, help: "The image injected sidecars run.")
    var injectImage = SidecarInjector.Settings.defaultImage

    @Option(name: .long, help: "The sidecar API's address as injected sidecars reach it.")
    var injectControlPlane = SidecarInjector.Settings.defaultControlPlane

    @Flag(name: .long, help: "Development mode: the HTTP API takes changes without the admin token. Never outside a developer's machine.")
    var dev = false

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        if case .failure(let problem) = StoreLocationSyntax.check(store) {
            throw ValidationError("--store: \(problem)")
        }
        // etcd's leases count whole seconds; renewals go three times per TTL.
        guard etcdLeaseTTL.duration >= .seconds(2), etcdLeaseTTL.duration.nanoseconds % 1_000_000_000 == 0 else {
            throw ValidationError("--etcd-lease-ttl: \(etcdLeaseTTL.duration) is not whole seconds of at least 2s")
        }
        try CommandLineChecks.listenAddress(listen, option: "--listen")
        try CommandLineChecks.listenAddress(http, option: "--http")
        guard listen != http else {
            throw ValidationError("--listen and --http are both \(listen); give each its own port")
        }
        if let webhook {
            try CommandLineChecks.listenAddress(webhook, option: "--webhook")
            guard webhook != listen, webhook != http else {
                throw ValidationError("--webhook: \(webhook) is the address of --listen or --http already; give it its own port")
            }
            guard !webhookDnsName.isEmpty, webhookDnsName.allSatisfy({ !$0.isEmpty }) else {
                throw ValidationError("--webhook-dns-name: name the webhook's Service, such as swiftmesh-control-plane.swiftmesh-system.svc")
            }
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
        let signals = SignalEvents([SIGTERM, SIGINT])
        let stopRequests = signals.stream
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in stopRequests { return }
                }
                switch try StoreLocationSyntax.check(store).get() {
                case .sqlite:
                    let sqlite: SQLiteStore
                    let state: StoredState
                    do {
                        sqlite = try SQLiteStore(directory: dataDir)
                        state = try sqlite.loadNow()
                    } catch {
                        throw Failure("could not open the state in --data-dir \(dataDir): \(error)")
                    }
                    let identity = try openIdentity(store: sqlite, logger: logger)
                    group.addTask { try await serve(store: sqlite, state: state, identity: identity, logger: logger) }
                case .etcd(let endpoints, let prefix):
                    let etcd = try EtcdStore(
                        endpoints: endpoints, prefix: prefix,
                        leaseTTLSeconds: etcdLeaseTTL.duration.nanoseconds / 1_000_000_000, logger: logger)
                    group.addTask { try await etcd.runConnections() }
                    // A task of its own: a signal stops the wait for etcd too.
                    group.addTask {
                        let (state, identity) = try await openShared(etcd, logger: logger)
                        try await serve(store: etcd, state: state, identity: identity, logger: logger)
                    }
                }
                // Whichever ends first: a signal, or the server failing.
                try await group.next()
                group.cancelAll()
            }
        } catch let failure as Failure {
            logger.critical("\(failure.description)")
            throw ExitCode(1)
        } catch {
            logger.critical("control plane stopped: \(error)")
            throw ExitCode(1)
        }
        // The signal sources live until here, whatever the optimizer sees.
        withExtendedLifetime(signals) {}
        logger.info("stopped")
    }

    /// The control plane over `state`, its APIs and, with --webhook, sidecar injection, until cancelled.
    private func serve(store: any ControlPlaneStore, state: StoredState, identity: MeshIdentity, logger: Logger) async throws {
        let settings = ControlPlane.Settings(
            heartbeatIntervalMillis: heartbeatInterval.duration.nanoseconds / 1_000_000, trustDomain: trustDomain)
        let controlPlane = ControlPlane(settings: settings, store: store, state: state, logger: logger)
        let injection = try webhook.map { address in
            let injector = SidecarInjector(settings: .init(image: injectImage, controlPlane: injectControlPlane))
            return (try InjectionWebhook(injector: injector, authority: identity.authority, dnsNames: webhookDnsName), address)
        }
        try await ControlPlaneServer(
            controlPlane: controlPlane, store: store, identity: identity, grpcAddress: listen, httpAddress: http,
            injection: injection, logger: logger
        ).run()
    }

    /// Why the control plane could not start, said as is.
    private struct Failure: Error, CustomStringConvertible {
        var description: String

        init(_ description: String) {
            self.description = description
        }
    }

    /// The state and the identity every replica shares, from etcd; waits
    /// up to a minute for etcd to answer (it may be starting too).
    private func openShared(_ etcd: EtcdStore, logger: Logger) async throws -> (StoredState, MeshIdentity) {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                let state = try await etcd.load()
                let given = caCert.flatMap { cert in caKey.map { CertificateAuthority.GivenRoot(certificatePath: cert, keyPath: $0) } }
                let shared = try await etcd.sharedIdentity {
                    let root = try CertificateAuthority.makeRoot(trustDomain: trustDomain)
                    return SharedIdentity(
                        rootCertificatePEM: root.certificatePEM, rootKeyPEM: root.keyPEM, adminToken: AdminToken.makeValue())
                }
                let authority: CertificateAuthority
                do {
                    authority = try given.map {
                        try CertificateAuthority.open(
                            directory: dataDir, trustDomain: trustDomain, certificateLifetime: certificateLifetime.swiftDuration,
                            given: $0)
                    } ?? CertificateAuthority.load(
                        certificatePEM: shared.rootCertificatePEM, keyPEM: shared.rootKeyPEM,
                        certificateSource: "in etcd (\(etcd.prefix)identity)", keySource: "in etcd (\(etcd.prefix)identity)",
                        trustDomain: trustDomain, certificateLifetime: certificateLifetime.swiftDuration)
                } catch {
                    throw Failure("could not set up the mesh's identity: \(error)")
                }
                logger.info("state and identity read from etcd", metadata: [
                    "endpoints": "\(etcd.client.endpoints.map(\.description).joined(separator: ","))", "prefix": "\(etcd.prefix)",
                    "trustDomain": "\(trustDomain)",
                ])
                let adminToken = try adminToken(shared: shared.adminToken, logger: logger)
                return (state, MeshIdentity(authority: authority, adminToken: adminToken, joinTokens: JoinTokens(store: etcd)))
            } catch let failure as Failure {
                throw failure
            } catch {
                guard ContinuousClock.now < deadline else {
                    throw Failure("etcd did not answer for a minute: \(error)")
                }
                logger.warning("etcd does not answer yet; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The CA, the admin token (none with --dev) and the join tokens, from --data-dir.
    private func openIdentity(store: SQLiteStore, logger: Logger) throws -> MeshIdentity {
        let given = caCert.flatMap { cert in caKey.map { CertificateAuthority.GivenRoot(certificatePath: cert, keyPath: $0) } }
        let authority: CertificateAuthority
        do {
            authority = try CertificateAuthority.open(
                directory: dataDir, trustDomain: trustDomain, certificateLifetime: certificateLifetime.swiftDuration, given: given)
        } catch {
            throw Failure("could not set up the mesh's identity: \(error)")
        }
        logger.info("certificate authority ready", metadata: [
            "trustDomain": "\(trustDomain)", "root": "\(given?.certificatePath ?? dataDir + "/ca/root.pem")",
        ])
        return MeshIdentity(authority: authority, adminToken: try adminToken(shared: nil, logger: logger), joinTokens: JoinTokens(store: store))
    }

    /// None with --dev; else the one replicas share (`shared`) or the one in --data-dir.
    private func adminToken(shared: String?, logger: Logger) throws -> AdminToken? {
        if dev {
            logger.warning(
                "DEVELOPMENT MODE (--dev): the HTTP API takes changes from anyone who can reach it, and sidecars get certificates without a join token. Never run --dev outside a developer's machine.")
            return nil
        }
        let token: AdminToken
        do {
            token = try shared.map { try AdminToken.shared($0, directory: dataDir) } ?? AdminToken.open(directory: dataDir)
        } catch {
            throw Failure("could not set up the admin token: \(error)")
        }
        logger.info("changes through the HTTP API need the admin token", metadata: [
            "file": "\(dataDir)/\(AdminToken.fileName)",
        ])
        return token
    }
}

extension DurationArgument {
    var swiftDuration: Duration { .nanoseconds(duration.nanoseconds) }
}
