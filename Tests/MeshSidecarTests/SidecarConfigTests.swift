import Foundation
import MeshConfig
import Testing

@testable import MeshSidecar

@Suite("SidecarConfig")
struct SidecarConfigTests {
    private let options = SidecarOptions(
        spec: SidecarSpec(
            service: "gateway", app: HostPort(host: "127.0.0.1", port: 8081), appProtocol: .http2,
            inbound: HostPort(host: "127.0.0.1", port: 15001),
            upstreams: [.init(service: "user", listen: HostPort(host: "127.0.0.1", port: 9001))],
            admin: HostPort(host: "127.0.0.1", port: 15100)),
        controlPlane: HostPort(host: "127.0.0.1", port: 15010), controlPlaneRootPEM: "root", sidecarID: "gateway-1")
    private let certificate = WorkloadCertificate(
        identity: "spiffe://swiftmesh.local/service/gateway", certificatePEM: "leaf", privateKeyPEM: "key",
        trustBundlePEM: "root", notAfter: Date(timeIntervalSince1970: 3000), received: Date(timeIntervalSince1970: 0))

    @Test func inboundGoesToTheAppAndEachUpstreamToItsService() {
        let user = SidecarConfig.Upstream(instances: [.init(address: HostPort(host: "10.0.0.2", port: 15001))])
        let config = SidecarConfig.build(options, upstreams: ["user": user], appProtocol: .http2, certificate: certificate)
        #expect(config.listeners.map(\.name) == ["inbound", "outbound_user"])
        #expect(config.listeners.map(\.listen.port) == [15001, 9001])
        #expect(config.listeners.map { $0.routes.map(\.action) } == [[.cluster("local_app")], [.cluster("user")]])
        #expect(config.listeners[1].routes[0].retries == SidecarConfig.defaultRetries)
        #expect(config.listeners[0].routes[0].retries == nil, "the caller's sidecar retries, not the callee's")
        #expect(config.cluster(named: "local_app")?.protocolKind == .http2)
        #expect(config.cluster(named: "local_app")?.discovery == .staticEndpoints([StaticEndpoint(address: options.spec.app)]))
        #expect(config.cluster(named: "user")?.discovery == .staticEndpoints([StaticEndpoint(address: HostPort(host: "10.0.0.2", port: 15001))]))
        #expect(config.cluster(named: "user")?.settings.loadBalancing == .leastRequest)
        #expect(config.cluster(named: "user")?.settings == ClusterSettings.meshDefaults)
        #expect(config.admin?.listen.port == 15100)
    }

    /// Callers of the inbound listener are other services' sidecars, each
    /// one client that must not crowd out the others; the outbound listeners
    /// serve only the app beside the sidecar.
    @Test func inboundLimitsEachCallerAndOutboundLeavesTheAppUncapped() {
        let config = SidecarConfig.build(options, upstreams: [:], appProtocol: .http2, certificate: certificate)
        #expect(config.listeners[0].limits == ListenerLimits())
        #expect(config.listeners[1].limits == .appOutbound)
    }

    @Test func beforeTheFirstSnapshotUpstreamsHaveNoEndpoints() {
        let config = SidecarConfig.build(options, upstreams: [:], appProtocol: .http2, certificate: certificate)
        #expect(config.cluster(named: "user")?.discovery == .staticEndpoints([]))
        #expect(config.cluster(named: "user")?.protocolKind == .http2)
    }

    @Test func withoutItsCertificateTheSidecarHasNoInboundListener() {
        let config = SidecarConfig.build(options, upstreams: [:], appProtocol: .http2, certificate: nil)
        #expect(config.listeners.map(\.name) == ["outbound_user"])
    }

    @Test func theInboundListenerTakesMutualTLS13FromTheMesh() {
        let strict = SidecarConfig.build(options, upstreams: [:], appProtocol: .http2, certificate: certificate)
        #expect(strict.listeners[0].tls == ListenerTLSConfig(
            certificate: .inMemory("leaf"), privateKey: .inMemory("key"), clientCertificate: .required,
            caCertificates: .inMemory("root"), mode: .strict, minimumVersion: .tls13))
        var permissiveOptions = options
        permissiveOptions.inboundTLS = .permissive
        let permissive = SidecarConfig.build(permissiveOptions, upstreams: [:], appProtocol: .http2, certificate: certificate)
        #expect(permissive.listeners[0].tls?.mode == .permissive)
        #expect(permissive.listeners[0].tls?.clientCertificate == .optional)
    }

    @Test func meshInstancesAreCalledInMutualTLSAndMustProveTheirIdentity() {
        let identity = "spiffe://swiftmesh.local/service/user"
        let user = SidecarConfig.Upstream(instances: [.init(address: HostPort(host: "10.0.0.2", port: 15001), identity: identity)])
        let config = SidecarConfig.build(options, upstreams: ["user": user], appProtocol: .http2, certificate: certificate)
        #expect(config.cluster(named: "user")?.tls == ClusterTLSConfig(
            caCertificates: .inMemory("root"), certificate: .inMemory("leaf"), privateKey: .inMemory("key"),
            identities: [identity], minimumVersion: .tls13))
        let external = SidecarConfig.Upstream(instances: [.init(address: HostPort(host: "10.0.0.3", port: 8080))])
        let plain = SidecarConfig.build(options, upstreams: ["user": external], appProtocol: .http2, certificate: certificate)
        #expect(plain.cluster(named: "user")?.tls == nil, "an instance outside the mesh is called in plaintext")
    }
}
