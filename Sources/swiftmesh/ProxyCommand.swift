import ArgumentParser
import Logging
import MeshConfig
import MeshProxy

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftmesh proxy --config FILE`: runs the proxy until SIGTERM or SIGINT
/// (drain, then exit 0); SIGHUP reloads the file.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the proxy from a configuration file.",
        discussion: """
            SIGTERM or SIGINT drains: stop accepting, let in-flight requests finish within drainTimeout, exit 0.
            SIGHUP reloads the configuration file; an invalid file is refused and the running configuration kept.
            """
    )

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    @Option(name: .long, help: "Event-loop threads (default: one per core).")
    var threads: Int = ProxyServer.defaultThreadCount

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard threads >= 1 else {
            throw ValidationError("--threads must be at least 1, got \(threads)")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let logger = Logger(label: "swiftmesh.proxy")

        let initial: ProxyConfig
        do {
            initial = try ConfigLoader.load(path: config)
        } catch {
            ConfigErrorReport.print(error, file: config)
            throw ExitCode(1)
        }
        if let errors = ProxyServer.checkTLS(initial) {
            ConfigErrorReport.print(errors, file: config)
            throw ExitCode(1)
        }

        // Signals are handled as events, so SIGTERM must not kill the process first.
        let signals = SignalEvents([SIGTERM, SIGINT, SIGHUP])
        let server = ProxyServer(config: initial, threads: threads, logger: logger)
        do {
            try await server.start()
        } catch {
            logger.critical("could not start: \(error)")
            await server.drain()
            throw ExitCode(1)
        }
        logger.info("proxy started", metadata: ["threads": "\(threads)", "config": "\(config)"])

        for await signal in signals.stream {
            if signal == SIGHUP {
                await reload(server, logger: logger)
            } else {
                await server.drain()
                return
            }
        }
    }

    private func reload(_ server: ProxyServer, logger: Logger) async {
        let next: ProxyConfig
        do {
            next = try ConfigLoader.load(path: config)
        } catch {
            logger.error("reload refused; keeping the running configuration", metadata: [
                "config": "\(config)", "errors": "\(error.issues.map(\.description))",
            ])
            return
        }
        do {
            try await server.reload(next)
        } catch let error as TLSSetupError {
            logger.error("reload refused; keeping the running configuration", metadata: [
                "config": "\(config)", "errors": "\([error.description])",
            ])
        } catch {
            logger.error("reload partly failed: \(error)")
        }
    }
}
