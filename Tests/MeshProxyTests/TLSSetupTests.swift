import MeshConfig
import Testing
@testable import MeshProxy

@Suite("TLS setup")
struct TLSSetupTests {
    private func config(listenerTLS: ListenerTLSConfig? = nil, clusterTLS: ClusterTLSConfig? = nil) -> ProxyConfig {
        ProxyConfig(
            listeners: [ListenerConfig(
                name: "in", listen: HostPort(host: "127.0.0.1", port: 8080),
                routes: [RouteConfig(match: RouteMatch(), action: .cluster("c"))], tls: listenerTLS)],
            clusters: [ClusterConfig(
                name: "c", discovery: .staticEndpoints([StaticEndpoint(address: HostPort(host: "127.0.0.1", port: 9000))]),
                tls: clusterTLS)])
    }

    @Test func anUnreadableFileIsAnIssueAtItsField() {
        let missing = "/nonexistent/swiftmesh-test.pem"
        let errors = ProxyServer.checkTLS(config(listenerTLS: ListenerTLSConfig(
            certificate: .file(missing), privateKey: .file(missing))))
        #expect(errors?.issues.first?.path == "listeners[0].tls.certificate")
        #expect(errors?.issues.first?.message.hasPrefix("cannot read \(missing)") == true)
        let cluster = ProxyServer.checkTLS(config(clusterTLS: ClusterTLSConfig(caCertificates: .file(missing))))
        #expect(cluster?.issues.first?.path == "clusters[0].tls.caCertificates")
    }

    @Test func pemThatIsNotAKeySaysSoWithoutQuotingIt() {
        let errors = ProxyServer.checkTLS(config(clusterTLS: ClusterTLSConfig(
            certificate: .inMemory("not a certificate"), privateKey: .inMemory("secret material"))))
        let issue = errors?.issues.first
        #expect(issue?.path == "clusters[0].tls.certificate")
        #expect(issue?.description.contains("secret material") == false)
    }

    @Test func noTLSNeedsNothing() {
        #expect(ProxyServer.checkTLS(config()) == nil)
    }
}
