import MeshConfig

/// What `swiftmesh sidecar` is told on its command line: the instance it
/// fronts, the services its app calls and where the control plane is.
public struct SidecarOptions: Sendable, Equatable {
    /// One service the app calls, and the local address it calls it at.
    public struct Upstream: Sendable, Equatable {
        public var service: String
        /// The outbound listener's address: the app calls this to reach `service`.
        public var listen: HostPort

        public init(service: String, listen: HostPort) {
            self.service = service
            self.listen = listen
        }
    }

    /// The control plane's sidecar API (gRPC over TLS); the host may be a DNS name.
    public var controlPlane: HostPort
    /// The mesh's root certificate (PEM): the control plane must prove itself with it.
    public var controlPlaneRootPEM: String
    /// The service this instance belongs to.
    public var service: String
    /// Where the app listens; inbound requests go there.
    public var app: HostPort
    /// The protocol the app speaks; nil: the sidecar finds out (`AppProbe`).
    public var appProtocol: UpstreamProtocol?
    /// Where other sidecars send this instance's requests.
    public var inbound: HostPort
    /// The address registered for this instance: `inbound` unless that is a
    /// wildcard such as 0.0.0.0, which other sidecars cannot reach.
    public var advertise: HostPort
    public var upstreams: [Upstream]
    /// The admin listener (`/ready`, `/metrics`, ...); none when nil.
    public var admin: HostPort?
    /// Such as version=v1 and zone=a; registered with the instance.
    public var labels: [String: String]
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
        controlPlane: HostPort, controlPlaneRootPEM: String, service: String, app: HostPort, appProtocol: UpstreamProtocol? = nil,
        inbound: HostPort, advertise: HostPort? = nil, upstreams: [Upstream] = [], admin: HostPort? = nil,
        labels: [String: String] = [:], sidecarID: String, joinToken: JoinToken? = nil, inboundTLS: ListenerTLSMode = .strict,
        accessLog: AccessLogConfig? = nil, tracing: TracingConfig? = nil
    ) {
        self.accessLog = accessLog
        self.tracing = tracing
        self.joinToken = joinToken
        self.inboundTLS = inboundTLS
        self.controlPlane = controlPlane
        self.controlPlaneRootPEM = controlPlaneRootPEM
        self.service = service
        self.app = app
        self.appProtocol = appProtocol
        self.inbound = inbound
        self.advertise = advertise ?? inbound
        self.upstreams = upstreams
        self.admin = admin
        self.labels = labels
        self.sidecarID = sidecarID
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
