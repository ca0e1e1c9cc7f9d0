import ExampleAPI
import GRPCCore

/// The Alive service: answers that the system is up, naming the instance
/// that said so. Its instances serve `grpc.health.v1.Health` too.
public struct AliveService: Example_Alive_V1_AliveService.ServiceProtocol {
    let instance: String
    /// The fully qualified name, as the health service knows it.
    public static let name = Example_Alive_V1_AliveService.descriptor.fullyQualifiedService

    public init(instance: String) {
        self.instance = instance
    }

    public func check(
        request: ServerRequest<Example_Alive_V1_CheckRequest>, context: ServerContext
    ) async throws -> ServerResponse<Example_Alive_V1_CheckReply> {
        var reply = Example_Alive_V1_CheckReply()
        reply.alive = true
        reply.servedBy = instance
        reply.caller = CallerIdentity.of(request.metadata)
        return ServerResponse(message: reply)
    }
}
