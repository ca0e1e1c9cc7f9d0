import MeshAPI
import MeshConfig
import Testing

@testable import MeshSidecar

@Suite("SnapshotReader")
struct SnapshotReaderTests {
    private func instance(
        _ address: String, _ port: UInt32 = 15001, protocolName: String = "http2", identity: String = ""
    ) -> Swiftmesh_V1_Instance {
        .with {
            $0.service = "user"
            $0.address = address
            $0.port = port
            $0.protocol = protocolName
            $0.identity = identity
        }
    }

    private func snapshot(_ upstreams: [(String, [Swiftmesh_V1_Instance])]) -> Swiftmesh_V1_Snapshot {
        .with { snapshot in
            snapshot.version = 7
            snapshot.upstreams = upstreams.map { name, instances in
                .with {
                    $0.service = name
                    $0.instances = instances
                }
            }
        }
    }

    @Test func eachUpstreamBecomesItsEndpoints() throws {
        let found = try SnapshotReader.upstreams(
            of: snapshot([("user", [instance("10.0.0.1"), instance("fd00::2", 15002)]), ("alive", [])]),
            calling: ["user", "alive"]).get()
        #expect(found["user"] == SidecarConfig.Upstream(protocolKind: .http2, instances: [
            .init(address: HostPort(host: "10.0.0.1", port: 15001)),
            .init(address: HostPort(host: "fd00::2", port: 15002)),
        ]))
        #expect(found["alive"]?.instances == [])
    }

    @Test(arguments: [
        (["other": ["10.0.0.1"]], "upstreams[0].service: \"other\" is not a service this sidecar calls"),
        (["user": ["user-1.local"]], "upstreams[0].instances[0].address: \"user-1.local\" is not an IP address; an instance is reached at its IP address, such as 10.0.0.7"),
        (["user": ["10.0.0.1", "10.0.0.2:0"]], "upstreams[0].instances[1].port: 0 is not a port; use 1 to 65535"),
    ])
    func aSnapshotThatCannotBeUsedIsRefusedWithTheFieldPath(upstreams: [String: [String]], reason: String) {
        let instances = upstreams.map { name, addresses in
            (name, addresses.map { text in
                let parts = text.split(separator: ":")
                return instance(String(parts[0]), parts.count > 1 ? UInt32(parts[1]) ?? 0 : 15001)
            })
        }
        let result = SnapshotReader.upstreams(of: snapshot(instances), calling: ["user"])
        #expect(result == .failure(SnapshotRefusal(reason)))
    }

    @Test func instancesOfOneServiceMustAgreeOnTheProtocol() {
        let result = SnapshotReader.upstreams(
            of: snapshot([("user", [instance("10.0.0.1"), instance("10.0.0.2", protocolName: "http1")])]), calling: ["user"])
        #expect(result == .failure(SnapshotRefusal(
            "upstreams[0].instances[1].protocol: http1 differs from the service's other instances (http2)")))
    }

    @Test func aServiceIsInTheMeshOrOutsideItWhole() {
        let identity = "spiffe://swiftmesh.local/service/user"
        let meshed = SnapshotReader.upstreams(
            of: snapshot([("user", [instance("10.0.0.1", identity: identity)])]), calling: ["user"])
        #expect((try? meshed.get())?["user"]?.instances.map(\.identity) == [identity])
        let mixed = SnapshotReader.upstreams(
            of: snapshot([("user", [instance("10.0.0.1", identity: identity), instance("10.0.0.2")])]), calling: ["user"])
        #expect(mixed == .failure(SnapshotRefusal(
            "upstreams[0].instances[1].identity: the service mixes instances in the mesh (mutual TLS) with instances outside it (plaintext); "
                + "register the outside ones under a service of their own")))
        let foreign = SnapshotReader.upstreams(
            of: snapshot([("user", [instance("10.0.0.1", identity: "spiffe://swiftmesh.local/service/alive")])]), calling: ["user"])
        #expect(foreign == .failure(SnapshotRefusal(
            "upstreams[0].instances[0].identity: \"spiffe://swiftmesh.local/service/alive\" is not the identity of service \"user\"")))
    }
}
