import ExampleAPI
import GRPCCore

/// The User service: made-up people with ids 1 to 1000. Every reply names
/// the instance that served it, so that the spread of calls over the
/// instances shows, and the caller its sidecar vouched for.
public struct UserService: Example_User_V1_UserService.ServiceProtocol {
    /// This instance's name, such as `user-2`.
    let instance: String
    /// The fully qualified name, as the health service knows it.
    public static let name = Example_User_V1_UserService.descriptor.fullyQualifiedService
    static let knownIDs: ClosedRange<Int64> = 1...1000
    static let maxListed = 100

    public init(instance: String) {
        self.instance = instance
    }

    public func getUser(
        request: ServerRequest<Example_User_V1_GetUserRequest>, context: ServerContext
    ) async throws -> ServerResponse<Example_User_V1_User> {
        let id = request.message.id
        guard Self.knownIDs.contains(id) else {
            throw RPCError(code: .notFound, message: "no user \(id); ids run from 1 to 1000")
        }
        return ServerResponse(message: user(id, caller: CallerIdentity.of(request.metadata)))
    }

    public func listUsers(
        request: ServerRequest<Example_User_V1_ListUsersRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Example_User_V1_User> {
        let limit = Int64(min(max(request.message.limit, 0), Int32(Self.maxListed)))
        let caller = CallerIdentity.of(request.metadata)
        return StreamingServerResponse { writer in
            for id in Self.knownIDs.prefix(Int(limit)) {
                try await writer.write(user(id, caller: caller))
            }
            return [:]
        }
    }

    private func user(_ id: Int64, caller: String) -> Example_User_V1_User {
        var user = Example_User_V1_User()
        user.id = id
        user.name = "User \(id)"
        user.email = "user\(id)@example.com"
        user.servedBy = instance
        user.caller = caller
        return user
    }
}
