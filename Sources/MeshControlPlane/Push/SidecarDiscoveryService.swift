import GRPCCore
import MeshAPI

/// The gRPC side of `ControlPlane`: one Subscribe stream per sidecar. The
/// stream's first message must be a Hello; snapshots go out as the control
/// plane pushes them, acks, refusals and heartbeats come in.
///
/// A sidecar that is going away (SIGTERM) says Goodbye, and its instance is
/// deregistered at once. A stream that ends without one (broken, cancelled)
/// leaves the instance registered until its heartbeats have been missing for
/// three intervals, so that a control-plane restart or a short network fault
/// moves no traffic.
struct SidecarDiscoveryService: Swiftmesh_V1_SidecarDiscovery.SimpleServiceProtocol {
    let controlPlane: ControlPlane

    func subscribe(
        request: RPCAsyncSequence<Swiftmesh_V1_SidecarMessage, any Error>,
        response: RPCWriter<Swiftmesh_V1_ControlPlaneMessage>,
        context: ServerContext
    ) async throws {
        // Only the newest snapshot matters: a sidecar that reads slowly skips
        // the ones a newer snapshot replaced before they left.
        let (snapshots, sink) = AsyncStream.makeStream(of: Swiftmesh_V1_Snapshot.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await snapshot in snapshots {
                    try await response.write(.with { $0.snapshot = snapshot })
                }
            }
            var session: (sidecarID: String, token: UInt64)?
            do {
                for try await message in request {
                    if case .goodbye = message.message, let leaving = session {
                        await controlPlane.close(sidecarID: leaving.sidecarID, token: leaving.token, deregister: true)
                        session = nil
                        break
                    }
                    session = try await handle(message, session: session, sink: sink)
                }
                if let session {
                    await controlPlane.close(sidecarID: session.sidecarID, token: session.token, deregister: false)
                }
            } catch {
                if let session {
                    await controlPlane.close(sidecarID: session.sidecarID, token: session.token, deregister: false)
                }
                sink.finish()
                throw error
            }
            sink.finish()
            try await group.waitForAll()
        }
    }

    private func handle(
        _ message: Swiftmesh_V1_SidecarMessage, session: (sidecarID: String, token: UInt64)?,
        sink: AsyncStream<Swiftmesh_V1_Snapshot>.Continuation
    ) async throws -> (sidecarID: String, token: UInt64)? {
        if case .hello(let hello) = message.message {
            guard session == nil else {
                throw RPCError(code: .invalidArgument, message: "a stream says Hello once; open a new stream to start over")
            }
            do {
                return (hello.sidecarID, try await controlPlane.open(hello, sink: sink))
            } catch {
                throw RPCError(code: .invalidArgument, message: "Hello refused: \(error)")
            }
        }
        guard let session else {
            throw RPCError(code: .failedPrecondition, message: "the first message of a stream must be a Hello")
        }
        switch message.message {
        case .heartbeat(let heartbeat):
            await controlPlane.heartbeat(
                sidecarID: session.sidecarID, token: session.token, healthy: heartbeat.health != .unhealthy,
                traffic: heartbeat.traffic, routes: heartbeat.routes)
        case .ack(let ack):
            await controlPlane.acknowledged(sidecarID: session.sidecarID, token: session.token, version: ack.version)
        case .nack(let nack):
            await controlPlane.refused(sidecarID: session.sidecarID, token: session.token, version: nack.version, reason: nack.reason)
        case .hello, .goodbye, nil:
            throw RPCError(code: .invalidArgument, message: "a sidecar message needs one of hello, ack, nack, heartbeat, goodbye")
        }
        return session
    }
}
