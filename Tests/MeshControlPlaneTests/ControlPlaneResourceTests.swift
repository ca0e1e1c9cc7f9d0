import Foundation
import Logging
import MeshAPI
import MeshConfig
import Testing

@testable import MeshControlPlane

@Suite("ControlPlane resources")
struct ControlPlaneResourceTests {
    private func controlPlane(store: SQLiteStore? = nil) throws -> ControlPlane {
        ControlPlane(store: store, state: try store?.loadNow() ?? StoredState(), logger: Logger(label: "test"))
    }

    private func policy(_ name: String, service: String, routesTo other: String? = nil) -> MeshResource {
        let routes = other.map { [PolicyRoute(match: RouteMatch(), split: [PolicyDestination(service: $0, weight: 1)])] } ?? []
        return MeshResource(name: name, spec: .servicePolicy(ServicePolicy(service: service, settings: .init(loadBalancing: .random), routes: routes)))
    }

    @Test func applyingAPolicyPushesItToTheServicesCallersWithWhatItRoutesTo() async throws {
        let controlPlane = try controlPlane()
        let (stream, sink) = AsyncStream.makeStream(of: Swiftmesh_V1_Snapshot.self)
        var snapshots = stream.makeAsyncIterator()
        _ = try await controlPlane.open(.with { $0.sidecarID = "gw"; $0.upstreams = ["user"] }, sink: sink)
        #expect(await snapshots.next()?.upstreams.map(\.policyJson) == [""])

        let applied = try await controlPlane.apply([policy("user", service: "user", routesTo: "user-next")], paths: [""])
        #expect(applied == [AppliedResource(kind: .servicePolicy, name: "user", outcome: .created)])
        let pushed = await snapshots.next()
        #expect(pushed?.upstreams.map(\.service) == ["user", "user-next"], "the service the policy routes to comes along")
        #expect(pushed?.upstreams.first?.policyJson.contains(#""loadBalancing":"random""#) == true)

        let again = try await controlPlane.apply([policy("user", service: "user", routesTo: "user-next")], paths: [""])
        #expect(again.map(\.outcome) == [.unchanged])
        #expect(try await controlPlane.delete(kind: .servicePolicy, name: "user"))
        #expect(await snapshots.next()?.upstreams.map(\.policyJson) == [""])
        #expect(try await controlPlane.delete(kind: .servicePolicy, name: "user") == false)
    }

    @Test func aSecondPolicyForOneServiceIsRefusedWhole() async throws {
        let controlPlane = try controlPlane()
        _ = try await controlPlane.apply([policy("user", service: "user")], paths: [""])
        await #expect(throws: ApplyFailure.refused(ResourceRefusal(
            path: "documents[1].spec.service",
            message: "user already has ServicePolicy user; a service has one ServicePolicy, so change that one or delete it first"
        ))) {
            try await controlPlane.apply(
                [policy("alive", service: "alive"), policy("user-2", service: "user")], paths: ["documents[0]", "documents[1]"])
        }
        #expect(await controlPlane.resources(of: .servicePolicy).map(\.name) == ["user"], "nothing of the refused apply")
    }

    @Test func resourcesSurviveARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftmesh-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let before = try controlPlane(store: SQLiteStore(directory: directory))
        _ = try await before.apply([policy("user", service: "user", routesTo: "user-next"), policy("alive", service: "alive")],
                                   paths: ["documents[0]", "documents[1]"])
        _ = try await before.delete(kind: .servicePolicy, name: "alive")
        let after = try controlPlane(store: SQLiteStore(directory: directory))
        #expect(await after.resources(of: .servicePolicy) == [policy("user", service: "user", routesTo: "user-next")])
    }
}
