import ExampleAPI
import Foundation
import GRPCCore
import Hummingbird

/// The gateway's JSON answers, and how a failed call becomes an HTTP status.
enum GatewayReply {
    struct UserJSON: Codable {
        var id: Int64
        var name: String
        var email: String
        var servedBy: String
        var caller: String

        init(_ user: Example_User_V1_User) {
            id = user.id
            name = user.name
            email = user.email
            servedBy = user.servedBy
            caller = user.caller
        }
    }

    struct UserList: Codable {
        var users: [UserJSON]
    }

    struct AliveJSON: Codable {
        var alive: Bool
        var servedBy: String
        var caller: String

        init(_ reply: Example_Alive_V1_CheckReply) {
            alive = reply.alive
            servedBy = reply.servedBy
            caller = reply.caller
        }
    }

    struct ErrorJSON: Codable {
        var error: String
        /// The gRPC status of the failed call, e.g. "unavailable".
        var grpcStatus: String?
    }

    /// Makes `call`; its result as JSON, or its failure as the HTTP status that fits the gRPC one.
    static func calling<Result: Sendable>(
        _ call: () async throws -> Result, reply: (Result) -> some Encodable
    ) async throws -> Response {
        do {
            return try json(.ok, reply(try await call()))
        } catch let error as RPCError {
            return try json(status(for: error.code), ErrorJSON(error: error.message, grpcStatus: "\(error.code)"))
        }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) throws -> Response {
        try json(status, ErrorJSON(error: message))
    }

    /// As gRPC's HTTP mapping (google.rpc.Code's comments) has it.
    private static func status(for code: RPCError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument, .outOfRange, .failedPrecondition: .badRequest
        case .notFound: .notFound
        case .permissionDenied: .forbidden
        case .unauthenticated: .unauthorized
        case .resourceExhausted: .tooManyRequests
        case .deadlineExceeded: .gatewayTimeout
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        default: .badGateway
        }
    }

    private static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
