import MeshConfig

/// What `swiftmesh sidecar` is told on its command line: the sidecar
/// itself (`SidecarSpec`: the instance it fronts, the services its app
/// calls) and how it reaches the control plane and reports.
public struct SidecarOptions: Sendable, Equatable {
    public var spec: SidecarSpec
    /// The control plane's sidecar API (gRPC over TLS); the host may be a DNS name.
    public var controlPlane: HostPort
    /// The mesh's root certificate (PEM): the control plane must prove itself with it.
    public var controlPlaneRootPEM: String
    /// Unique per sidecar process.
    public var sidecarID: String
    /// From `swiftmesh token create --service <service>`: what the control
    /// plane asks for before it issues the service's certificate (one in
    /// development mode issues without). Sent to it, never logged.
    public var joinToken: JoinToken?
    /// strict: the inbound listener takes only mutual TLS from the mesh.
    /// permissive: plaintext too, for a migration into the mesh.
    public var inboundTLS: ListenerTLSMode
    /// One JSON line per request, inbound and outbound; none when nil.
    public var accessLog: AccessLogConfig?
    /// A span per request, inbound and outbound; none when nil.
    public var tracing: TracingConfig?

    public init(
        spec: SidecarSpec, controlPlane: HostPort, controlPlaneRootPEM: String, sidecarID: String,
        joinToken: JoinToken? = nil, inboundTLS: ListenerTLSMode = .strict, accessLog: AccessLogConfig? = nil,
        tracing: TracingConfig? = nil
    ) {
        self.spec = spec
        self.controlPlane = controlPlane
        self.controlPlaneRootPEM = controlPlaneRootPEM
        self.sidecarID = sidecarID
        self.joinToken = joinToken
        self.inboundTLS = inboundTLS
        self.accessLog = accessLog
        self.tracing = tracing
    }
}

/// A join token, which prints as `(redacted)`: options and errors that
/// carry one can be logged without it.
public struct JoinToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "(redacted)" }
    public var debugDescription: String { description }
}
