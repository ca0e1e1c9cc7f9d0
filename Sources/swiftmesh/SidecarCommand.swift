import ArgumentParser
import Foundation
import Logging
import MeshConfig
import MeshSidecar

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftmesh sidecar`: the proxy beside one instance, configured by the
/// control plane instead of a file.
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Run a sidecar: register this instance and proxy its traffic, configured by the control plane.",
        discussion: """
            Inbound requests (from other sidecars, at --inbound) go to the app at --app. The app reaches each \
            service it calls at that service's --upstream address. Sidecars talk to each other in mutual TLS: \
            this one makes its private key, and gets its service's certificate from the control plane with the \
            join token (--token or SWIFTMESH_TOKEN, from `swiftmesh token create --service NAME`), renewing it \
            two thirds into its lifetime. /ready on --admin is 200 once the first configuration from the control \
            plane is applied. SIGTERM deregisters the instance, then drains.
            """
    )

    @Option(name: .long, help: "The control plane's sidecar API, host:port.")
    var controlPlane: HostPort

    @Option(name: .long, help: ArgumentHelp(
        "The mesh's root certificate, PEM: the control plane must prove itself with it (its --data-dir's ca/root.pem, or `swiftmesh get ca`).",
        valueName: "file"))
    var controlPlaneCa: String

    @Option(name: .long, help: "The service this instance belongs to.")
    var service: String

    @Option(name: .long, help: "Where the app listens, host:port.")
    var app: HostPort

    @Option(name: .long, help: "The protocol the app speaks: auto (found out by the sidecar), http1, or http2 (gRPC apps).")
    var appProtocol: AppProtocol = .auto

    enum AppProtocol: String, ExpressibleByArgument, CaseIterable {
        /// The sidecar finds out by sending the app the HTTP/2 preface.
        case auto, http1, http2
    }

    @Option(name: .long, help: "Where other sidecars reach this instance, host:port.")
    var inbound: HostPort

    @Option(name: .long, help: "The address registered for this instance (default: --inbound; required when that is 0.0.0.0 or [::]).")
    var advertise: HostPort?

    @Option(name: .long, help: "A service the app calls and the local address it calls it at: NAME=HOST:PORT. Repeatable.")
    var upstream: [String] = []

    @Option(name: .long, help: "The admin listener (/ready, /metrics, /config, /clusters), host:port.")
    var admin: HostPort?

    @Option(name: .long, help: "A label registered with the instance, such as version=v1. Repeatable.")
    var label: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "The join token for --service (default: the SWIFTMESH_TOKEN environment variable, which other users cannot read in the process list).",
        valueName: "token"))
    var token: String?

    @Option(name: .long, help: "Inbound TLS: strict (mutual TLS from the mesh only) or permissive (plaintext too, while callers join the mesh).")
    var inboundTLS: ListenerTLSMode = .strict

    @Option(name: .long, help: "Access log, one JSON line per request: stdout, or a file to append to (default: none).")
    var accessLog: String?

    @Option(name: .long, help: "The share of requests the access log records, 0 to 100.")
    var accessLogSamplePercent: Double = 100

    @Option(name: .long, help: ArgumentHelp(
        "Trace requests: the OTLP HTTP receiver spans are sent to, e.g. http://127.0.0.1:4318 (default: no tracing).",
        valueName: "url"))
    var tracingOtlpEndpoint: String?

    @Option(name: .long, help: "The share of requests traced when the caller made no decision, 0 to 1.")
    var tracingSamplingRate: Double = 1

    @Option(name: .long, help: "The service.name of the spans (default: --service).")
    var tracingServiceName: String?

    @Option(name: .long, help: "Event-loop threads.")
    var threads = 1

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        _ = try options()
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let logger = Logger(label: "swiftmesh.sidecar")
        let sidecar: Sidecar
        do {
            sidecar = try Sidecar(options: try options(), threads: threads, logger: logger)
        } catch {
            logger.critical("could not start: \(error)")
            throw ExitCode(1)
        }
        // Signals are handled as events, so SIGTERM must not kill the process first.
        let signals = SignalEvents([SIGTERM, SIGINT, SIGHUP])
        do {
            try await sidecar.start()
        } catch {
            logger.critical("could not start: \(error)")
            await sidecar.stop()
            throw ExitCode(1)
        }
        logger.info("sidecar started", metadata: ["service": "\(service)", "inbound": "\(inbound)"])
        let stopSignals = signals.stream
        // Whichever comes first: a signal to stop, or a failure the sidecar cannot go on after.
        let failed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await signal in stopSignals {
                    guard signal == SIGHUP else { return false }
                    logger.info("SIGHUP ignored: the control plane configures this sidecar, there is no file to reload")
                }
                return false
            }
            group.addTask {
                for await _ in sidecar.failures { return true }
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        withExtendedLifetime(signals) {}
        await sidecar.stop()
        if failed {
            throw ExitCode(1)
        }
    }

    /// The options, checked as a whole; each error names its option and the fix.
    private func options() throws -> SidecarOptions {
        guard threads >= 1 else {
            throw ValidationError("--threads must be at least 1, got \(threads)")
        }
        let spec: SidecarSpec
        do {
            spec = SidecarSpec(
                service: service, app: app, appProtocol: UpstreamProtocol(rawValue: appProtocol.rawValue),
                inbound: inbound, advertise: advertise, upstreams: try upstream.map(SidecarSpec.upstream(parsing:)),
                admin: admin, labels: try SidecarSpec.labels(parsing: label))
            if let problem = spec.problem {
                throw problem
            }
        } catch {
            throw ValidationError("\(error)")
        }
        guard (0...100).contains(accessLogSamplePercent) else {
            throw ValidationError("--access-log-sample-percent must be from 0 to 100, got \(accessLogSamplePercent)")
        }
        if accessLog == "" {
            throw ValidationError("--access-log: give stdout or a file path")
        }
        if let endpoint = tracingOtlpEndpoint, let problem = TracingConfig.problem(inEndpoint: endpoint) {
            throw ValidationError("--tracing-otlp-endpoint \(endpoint) \(problem)")
        }
        guard (0...1).contains(tracingSamplingRate) else {
            throw ValidationError("--tracing-sampling-rate must be from 0 to 1, got \(tracingSamplingRate)")
        }
        if tracingOtlpEndpoint == nil, tracingServiceName != nil || tracingSamplingRate != 1 {
            throw ValidationError("--tracing-sampling-rate and --tracing-service-name need --tracing-otlp-endpoint")
        }
        if tracingServiceName == "" {
            throw ValidationError("--tracing-service-name: give a name, or leave it out to use --service")
        }
        let rootPEM: String
        do {
            rootPEM = try String(contentsOfFile: controlPlaneCa, encoding: .utf8)
        } catch {
            throw ValidationError("--control-plane-ca \(controlPlaneCa): cannot be read (\(error.localizedDescription)); give the mesh's root certificate, e.g. .swiftmesh/ca/root.pem, or save `swiftmesh get ca` to a file")
        }
        guard rootPEM.contains("-----BEGIN CERTIFICATE-----") else {
            throw ValidationError("--control-plane-ca \(controlPlaneCa): holds no PEM certificate; give the mesh's root certificate (swiftmesh get ca)")
        }
        return SidecarOptions(
            spec: spec, controlPlane: controlPlane, controlPlaneRootPEM: rootPEM,
            sidecarID: "\(service)-\(spec.advertise.host):\(spec.advertise.port)-\(getpid())",
            joinToken: joinToken(), inboundTLS: inboundTLS,
            accessLog: accessLog.map {
                AccessLogConfig(destination: .init(path: $0), samplePercent: accessLogSamplePercent)
            },
            tracing: tracingOtlpEndpoint.map {
                TracingConfig(otlpEndpoint: $0, samplingRate: tracingSamplingRate, serviceName: tracingServiceName ?? service)
            })
    }

    /// --token, else SWIFTMESH_TOKEN; nil when neither is given or both are empty.
    private func joinToken() -> JoinToken? {
        let given = token ?? ProcessInfo.processInfo.environment["SWIFTMESH_TOKEN"]
        guard let given = given?.trimmingCharacters(in: .whitespacesAndNewlines), !given.isEmpty else { return nil }
        return JoinToken(given)
    }
}
