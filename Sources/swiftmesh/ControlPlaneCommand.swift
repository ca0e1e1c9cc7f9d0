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
            Sidecars subscribe on --listen (gRPC); the CLI (apply, get, delete, register, deregister) uses the HTTP \
            API on --http. Every change of instances or policies reaches the sidecars it concerns at once. State is \
            kept in --data-dir/state.sqlite; after a restart, sidecars that have not reconnected yet keep their \
            instances for 15s.
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

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        try CommandLineChecks.listenAddress(listen, option: "--listen")
        try CommandLineChecks.listenAddress(http, option: "--http")
        guard listen != http else {
            throw ValidationError("--listen and --http are both \(listen); give each its own port")
        }
        guard heartbeatInterval.duration >= .milliseconds(10) else {
            throw ValidationError("--heartbeat-interval: \(heartbeatInterval.duration) is too short; use at least 10ms")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let logger = Logger(label: "swiftmesh.control-plane")
        let controlPlane: ControlPlane
        do {
            let store = try ControlPlaneStore(directory: dataDir)
            controlPlane = try ControlPlane(
                settings: .init(heartbeatIntervalMillis: heartbeatInterval.duration.nanoseconds / 1_000_000),
                store: store, logger: logger)
        } catch {
            logger.critical("could not open the state in --data-dir \(dataDir): \(error)")
            throw ExitCode(1)
        }
        let signals = SignalEvents([SIGTERM, SIGINT])
        let stopRequests = signals.stream
        let server = ControlPlaneServer(controlPlane: controlPlane, grpcAddress: listen, httpAddress: http, logger: logger)
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
}
