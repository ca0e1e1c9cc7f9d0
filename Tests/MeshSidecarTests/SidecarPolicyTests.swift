import MeshAPI
import MeshConfig
import Testing

@testable import MeshSidecar

@Suite("Sidecar configuration from policies")
struct SidecarPolicyTests {
    private let options = SidecarOptions(
        spec: SidecarSpec(
            service: "gateway", app: HostPort(host: "127.0.0.1", port: 8081), inbound: HostPort(host: "127.0.0.1", port: 15001),
            upstreams: [.init(service: "user", listen: HostPort(host: "127.0.0.1", port: 9001))]),
        controlPlane: HostPort(host: "127.0.0.1", port: 15010), controlPlaneRootPEM: "root", sidecarID: "gateway-1")

    private func instance(_ address: String, version: String) -> SidecarConfig.Upstream.Instance {
        .init(address: HostPort(host: address, port: 15001), labels: ["version": version])
    }

    @Test func aSplitOverSubsetsBecomesAClusterPerSubsetBeforeTheCatchAll() {
        let policy = ServicePolicy(
            service: "user", settings: .init(loadBalancing: .roundRobin, circuitBreaker: CircuitBreakerConfig(maxRequests: 10)),
            routes: [PolicyRoute(
                match: RouteMatch(grpc: GRPCMatch(service: "user.UserService")), timeout: .seconds(2),
                split: [
                    PolicyDestination(service: "user", subset: ["version": "v1"], weight: 90),
                    PolicyDestination(service: "user", subset: ["version": "v2"], weight: 10),
                ])])
        let user = SidecarConfig.Upstream(
            instances: [instance("10.0.0.1", version: "v1"), instance("10.0.0.2", version: "v1"), instance("10.0.0.3", version: "v2")],
            policy: policy)
        let config = SidecarConfig.build(options, upstreams: ["user": user], appProtocol: .http1, certificate: nil)
        let routes = config.listeners[0].routes
        #expect(routes.map(\.action) == [
            .split([WeightedCluster(cluster: "user[version=v1]", weight: 90), WeightedCluster(cluster: "user[version=v2]", weight: 10)]),
            .cluster("user"),
        ])
        #expect(routes[0].timeout == .seconds(2))
        #expect(routes[0].retries == SidecarConfig.defaultRetries, "a route without retries keeps the mesh's")
        #expect(config.clusters.map(\.name) == ["local_app", "user", "user[version=v1]", "user[version=v2]"])
        #expect(config.cluster(named: "user[version=v1]")?.discovery == .staticEndpoints([
            StaticEndpoint(address: HostPort(host: "10.0.0.1", port: 15001)),
            StaticEndpoint(address: HostPort(host: "10.0.0.2", port: 15001)),
        ]))
        #expect(config.cluster(named: "user[version=v2]")?.settings.loadBalancing == .roundRobin, "the policy's settings")
        #expect(config.cluster(named: "user[version=v2]")?.settings.circuitBreaker.maxRequests == 10)
    }

    @Test func aRouteToAnotherServiceUsesThatServicesPolicy() {
        let user = SidecarConfig.Upstream(instances: [], policy: ServicePolicy(
            service: "user", routes: [PolicyRoute(match: RouteMatch(pathPrefix: "/next/"), split: [PolicyDestination(service: "user-next", weight: 1)])]))
        let next = SidecarConfig.Upstream(instances: [instance("10.0.0.9", version: "v3")], policy: ServicePolicy(
            service: "user-next", settings: .init(loadBalancing: .random)))
        let config = SidecarConfig.build(options, upstreams: ["user": user, "user-next": next], appProtocol: .http1, certificate: nil)
        #expect(config.listeners[0].routes.map(\.action) == [.cluster("user-next"), .cluster("user")])
        #expect(config.cluster(named: "user-next")?.settings.loadBalancing == .random)
        #expect(config.listeners.count == 1, "no listener for a service the app does not call itself")
    }

    private func upstream(_ service: String, policy: ServicePolicy?) -> Swiftmesh_V1_Upstream {
        .with {
            $0.service = service
            $0.policyJson = policy.map(ServicePolicyJSON.render) ?? ""
        }
    }

    @Test func aSnapshotCarriesThePoliciesAndTheServicesTheyRouteTo() throws {
        let policy = ServicePolicy(service: "user", routes: [
            PolicyRoute(match: RouteMatch(), split: [PolicyDestination(service: "user-next", weight: 1)]),
        ])
        let snapshot = Swiftmesh_V1_Snapshot.with {
            $0.upstreams = [upstream("user", policy: policy), upstream("user-next", policy: nil)]
        }
        let found = try SnapshotReader.upstreams(of: snapshot, calling: ["user"]).get()
        #expect(found["user"]?.policy == policy)
        #expect(found["user-next"]?.policy == nil)

        let missing = Swiftmesh_V1_Snapshot.with { $0.upstreams = [upstream("user", policy: policy)] }
        #expect(SnapshotReader.upstreams(of: missing, calling: ["user"]) == .failure(SnapshotRefusal(
            "upstreams[0].policy_json.routes[0].split[0].service: \"user-next\" has no entry in the snapshot")))
    }

    @Test func aPolicyTheSidecarCannotReadIsRefusedWithItsPath() {
        let snapshot = Swiftmesh_V1_Snapshot.with {
            $0.upstreams = [.with {
                $0.service = "user"
                $0.policyJson = #"{"service":"user","routes":[{"timeout":"soon"}]}"#
            }]
        }
        guard case .failure(let refusal) = SnapshotReader.upstreams(of: snapshot, calling: ["user"]) else {
            Issue.record("the snapshot was accepted")
            return
        }
        #expect(refusal.description.hasPrefix("upstreams[0].policy_json.routes[0].timeout: expected a duration"))
    }
}
