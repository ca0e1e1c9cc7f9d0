import ExampleAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Hummingbird
import Logging

/// The Gateway: HTTP/JSON outside, gRPC inside. It turns `GET /users/{id}`,
/// `GET /users?limit=N` and `GET /alive` into calls to the User and Alive
/// services, made to its sidecar's local addresses for them: the gateway
/// knows no instance of either, and the sidecar balances every call.
public struct Gateway: Sendable {
    public struct Address: Sendable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Where the gateway calls each service: in the mesh, the one local
    /// address its sidecar takes the service's calls at (its `--upstream`).
    /// Given several instances' addresses instead, the gateway balances
    /// itself (client-side, round robin), as every app must without a mesh.
    let user: [Address]
    /// Nil: a mesh without the Alive service; `GET /alive` answers 404.
    let alive: [Address]?
    /// How long a call may take, retries by the sidecar included.
    static let callTimeout = Duration.seconds(5)

    public init(user: [Address], alive: [Address]?) {
        self.user = user
        self.alive = alive
    }

    /// Serves HTTP on `host:port` until cancelled.
    public func run(host: String, port: Int, logger: Logger) async throws {
        let userClient = try Self.client(user)
        let aliveClient = try alive.map(Self.client)
        let router = Router()
        let users = Example_User_V1_UserService.Client(wrapping: userClient)
        let checks = aliveClient.map(Example_Alive_V1_AliveService.Client.init(wrapping:))
        router.get("users/:id") { _, context in
            guard let id = Int64(try context.parameters.require("id")) else {
                return try GatewayReply.error(.badRequest, "the user id must be a number")
            }
            return try await GatewayReply.calling {
                try await users.getUser(.with { $0.id = id }, options: Self.options)
            } reply: { GatewayReply.UserJSON($0) }
        }
        router.get("users") { request, _ in
            let limit = request.uri.queryParameters.get("limit", as: Int32.self) ?? 10
            return try await GatewayReply.calling {
                try await users.listUsers(.with { $0.limit = limit }, options: Self.options) { response in
                    try await response.messages.reduce(into: []) { $0.append($1) }
                }
            } reply: { GatewayReply.UserList(users: $0.map(GatewayReply.UserJSON.init)) }
        }
        router.get("alive") { _, _ in
            guard let checks else {
                return try GatewayReply.error(.notFound, "this gateway was started without --alive")
            }
            return try await GatewayReply.calling {
                try await checks.check(Example_Alive_V1_CheckRequest(), options: Self.options)
            } reply: { GatewayReply.AliveJSON($0) }
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "swiftmesh-example-gateway"),
            onServerRunning: { channel in
                logger.info("serving HTTP", metadata: ["address": "\(host):\(channel.localAddress?.port ?? port)"])
            },
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await userClient.runConnections() }
            if let aliveClient {
                group.addTask { try await aliveClient.runConnections() }
            }
            group.addTask { try await app.run() }
            try await group.next()
            group.cancelAll()
        }
    }

    private static var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = callTimeout
        return options
    }

    /// A plaintext HTTP/2 client to the addresses, round robin over them when there are several.
    private static func client(_ addresses: [Address]) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        let target = ResolvableTargets.IPv4(addresses: addresses.map { .init(host: $0.host, port: $0.port) })
        let roundRobin = ServiceConfig(loadBalancingConfig: [.roundRobin])
        return GRPCClient(transport: try .http2NIOPosix(
            target: target, transportSecurity: .plaintext, config: .defaults, serviceConfig: roundRobin))
    }
}
