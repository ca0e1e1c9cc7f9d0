import ArgumentParser
import ExampleServices
import Logging
import MeshConfig

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftmesh example user|alive|gateway`: the demo's services
/// (examples/services), in this binary so that one image runs every role.
struct ExampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Run one of the demo's example services (the code is in examples/services).",
        discussion: """
            user: the User service over gRPC (GetUser, ListUsers), each reply naming --instance. \
            alive: the Alive service over gRPC (Check), likewise. Both serve grpc.health.v1 too. \
            gateway: HTTP/JSON (GET /users/{id}, /users?limit=N, /alive), each request one gRPC call to \
            --user or --alive: its sidecar's local address for that service, or several instances' \
            addresses, comma-separated, which the gateway then balances itself (client-side, round robin). \
            Without --alive, GET /alive answers 404 (a mesh without the Alive service).
            """)

    enum Service: String, ExpressibleByArgument, CaseIterable {
        case user, alive, gateway
    }

    @Argument(help: "user, alive or gateway.")
    var service: Service

    @Option(name: .long, help: "Where the service listens, host:port.")
    var listen: HostPort

    @Option(name: .long, help: "user and alive: this instance's name, put in every reply, such as user-1.")
    var instance: String?

    @Option(name: .long, help: ArgumentHelp("gateway: where it calls the user service.", valueName: "host:port[,host:port...]"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("gateway: where it calls the alive service.", valueName: "host:port[,host:port...]"))
    var alive: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        switch service {
        case .user, .alive:
            guard instance != nil else { throw ValidationError("\(service) needs --instance NAME, such as \(service)-1") }
            guard user == nil, alive == nil else { throw ValidationError("--user and --alive are for the gateway") }
        case .gateway:
            _ = try gatewayAddresses()
            guard instance == nil else { throw ValidationError("--instance is for user and alive") }
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let logger = Logger(label: "swiftmesh.example.\(instance ?? service.rawValue)")
        let signals = SignalEvents([SIGTERM, SIGINT])
        let stopSignals = signals.stream
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serve(logger) }
            group.addTask { for await _ in stopSignals { return } }
            // Until a signal, or until the service fails (a port in use): either way, stop.
            try await group.next()
            group.cancelAll()
        }
        withExtendedLifetime(signals) {}
    }

    private func serve(_ logger: Logger) async throws {
        switch service {
        case .user:
            try await ExampleServer.serveInstance(
                of: UserService(instance: instance ?? ""), named: UserService.name,
                host: listen.host, port: listen.port, logger: logger)
        case .alive:
            try await ExampleServer.serveInstance(
                of: AliveService(instance: instance ?? ""), named: AliveService.name,
                host: listen.host, port: listen.port, logger: logger)
        case .gateway:
            let (user, alive) = try gatewayAddresses()
            try await Gateway(user: user, alive: alive).run(host: listen.host, port: listen.port, logger: logger)
        }
    }

    /// The gateway's `--user` (required) and `--alive` (optional: a mesh without the Alive service).
    private func gatewayAddresses() throws -> (user: [Gateway.Address], alive: [Gateway.Address]?) {
        guard let user else { throw ValidationError("gateway needs --user host:port") }
        return (try addresses(user, option: "--user"), try alive.map { try addresses($0, option: "--alive") })
    }

    /// `host:port[,host:port...]`, IPv4 literals (what the gateway's gRPC client dials without DNS).
    private func addresses(_ text: String, option: String) throws -> [Gateway.Address] {
        return try text.split(separator: ",").map { part in
            guard let address = HostPortSyntax.parse(String(part)), HostPortSyntax.isIPLiteral(address.host),
                  !address.host.contains(":") else {
                throw ValidationError("\(option): \"\(part)\" is not an IPv4 host:port such as 127.0.0.1:15001")
            }
            return Gateway.Address(host: address.host, port: address.port)
        }
    }
}
