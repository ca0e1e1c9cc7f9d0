import MeshConfig
import Testing

@testable import MeshSidecar

@Suite("SidecarConfig")
struct SidecarConfigTests {
    private let options = SidecarOptions(
        controlPlane: HostPort(host: "127.0.0.1", port: 15010), service: "gateway",
        app: HostPort(host: "127.0.0.1", port: 8081), appProtocol: .http2,
        inbound: HostPort(host: "127.0.0.1", port: 15001),
        upstreams: [.init(service: "user", listen: HostPort(host: "127.0.0.1", port: 9001))],
        admin: HostPort(host: "127.0.0.1", port: 15100), sidecarID: "gateway-1")

    @Test func inboundGoesToTheAppAndEachUpstreamToItsService() {
        let user = SidecarConfig.Upstream(instances: [.init(address: HostPort(host: "10.0.0.2", port: 15001))])
        let config = SidecarConfig.build(options, upstreams: ["user": user], appProtocol: .http2)
        #expect(config.listeners.map(\.name) == ["inbound", "outbound_user"])
        #expect(config.listeners.map(\.listen.port) == [15001, 9001])
        #expect(config.listeners.map { $0.routes.map(\.action) } == [[.cluster("local_app")], [.cluster("user")]])
        #expect(config.listeners[1].routes[0].retries == SidecarConfig.defaultRetries)
        #expect(config.listeners[0].routes[0].retries == nil, "the caller's sidecar retries, not the callee's")
        #expect(config.cluster(named: "local_app")?.protocolKind == .http2)
        #expect(config.cluster(named: "local_app")?.discovery == .staticEndpoints([StaticEndpoint(address: options.app)]))
        #expect(config.cluster(named: "user")?.discovery == .staticEndpoints([StaticEndpoint(address: HostPort(host: "10.0.0.2", port: 15001))]))
        #expect(config.cluster(named: "user")?.loadBalancing == .leastRequest)
        #expect(config.cluster(named: "user")?.outlierDetection == SidecarConfig.defaultOutlierDetection)
        #expect(config.admin?.listen.port == 15100)
    }

    @Test func beforeTheFirstSnapshotUpstreamsHaveNoEndpoints() {
        let config = SidecarConfig.build(options, upstreams: [:], appProtocol: .http2)
        #expect(config.cluster(named: "user")?.discovery == .staticEndpoints([]))
        #expect(config.cluster(named: "user")?.protocolKind == .http2)
    }
}
