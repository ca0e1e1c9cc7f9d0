import MeshAPI
import SwiftProtobuf
import Testing

/// The generated code is committed; these tests check that it is the code
/// of proto/swiftmesh/v1 and that messages survive the wire.
@Suite("Sidecar discovery messages")
struct SidecarDiscoveryMessagesTests {
    private var snapshot: Swiftmesh_V1_Snapshot {
        var instance = Swiftmesh_V1_Instance()
        instance.service = "user"
        instance.address = "10.0.0.7"
        instance.port = 15001
        instance.protocol = "http2"
        instance.labels = ["version": "v2", "zone": "a"]
        var upstream = Swiftmesh_V1_Upstream()
        upstream.service = "user"
        upstream.instances = [instance]
        upstream.policyJson = #"{"loadBalancing":"least_request"}"#
        var snapshot = Swiftmesh_V1_Snapshot()
        snapshot.version = 42
        snapshot.upstreams = [upstream]
        snapshot.heartbeatIntervalMs = 1000
        return snapshot
    }

    @Test func aSnapshotSurvivesTheWire() throws {
        var message = Swiftmesh_V1_ControlPlaneMessage()
        message.snapshot = snapshot
        let bytes: [UInt8] = try message.serializedBytes()
        let decoded = try Swiftmesh_V1_ControlPlaneMessage(serializedBytes: bytes)
        #expect(decoded.snapshot == snapshot)
        #expect(decoded.snapshot.upstreams.first?.instances.first?.labels["version"] == "v2")
    }

    @Test func sidecarMessagesAreOneOfTheirKinds() throws {
        var nack = Swiftmesh_V1_SidecarMessage()
        nack.nack = .with {
            $0.version = 42
            $0.reason = "routes[0].timeout: expected a duration"
        }
        let decoded = try Swiftmesh_V1_SidecarMessage(serializedBytes: try nack.serializedBytes() as [UInt8])
        guard case .nack(let refused)? = decoded.message else {
            Issue.record("expected a nack, got \(String(describing: decoded.message))")
            return
        }
        #expect(refused.version == 42)
    }

    @Test func theServiceIsNamedAsInTheProto() {
        #expect(Swiftmesh_V1_SidecarDiscovery.descriptor.fullyQualifiedService == "swiftmesh.v1.SidecarDiscovery")
        #expect(Swiftmesh_V1_SidecarDiscovery.Method.Subscribe.descriptor.method == "Subscribe")
    }
}
