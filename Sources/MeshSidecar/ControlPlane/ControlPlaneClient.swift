import GRPCCore
import GRPCNIOTransportHTTP2Posix
import MeshConfig

/// The sidecar's one gRPC connection to the control plane, shared by its
/// subscription and its certificate renewal. It reconnects on its own.
enum ControlPlaneClient {
    static func make(_ controlPlane: HostPort) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
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
        return GRPCClient(transport: try .http2NIOPosix(target: target, transportSecurity: .plaintext, config: config))
    }
}
