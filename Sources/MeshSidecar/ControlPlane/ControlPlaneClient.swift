import GRPCCore
import GRPCNIOTransportHTTP2Posix
import MeshConfig

/// The sidecar's one gRPC connection to the control plane, shared by its
/// subscription and its certificate renewal. It reconnects on its own. It
/// runs TLS, and the control plane's certificate must chain to the mesh's
/// root (`--control-plane-ca`) and name `SPIFFEID.controlPlaneServerName`,
/// whatever address reaches it: nothing, not the join token, goes to a
/// control plane that cannot prove it is the mesh's.
enum ControlPlaneClient {
    static func make(_ controlPlane: HostPort, rootPEM: String) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        let target: any ResolvableTarget = if !HostPortSyntax.isIPLiteral(controlPlane.host) {
            .dns(host: controlPlane.host, port: controlPlane.port)
        } else if controlPlane.host.contains(":") {
            .ipv6(address: controlPlane.host, port: controlPlane.port)
        } else {
            .ipv4(address: controlPlane.host, port: controlPlane.port)
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff = .init(initial: ReconnectBackoff.base, max: ReconnectBackoff.max, multiplier: 2, jitter: 0.2)
        // A control plane whose host vanished without closing the connection
        // is noticed within 15 s of its last message, and tried again.
        config.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: true)
        config.http2.authority = SPIFFEID.controlPlaneServerName
        let security = HTTP2ClientTransport.Posix.TransportSecurity.tls {
            $0.trustRoots = .certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
            $0.serverCertificateVerification = .fullVerification
        }
        return GRPCClient(transport: try .http2NIOPosix(target: target, transportSecurity: security, config: config))
    }
}
