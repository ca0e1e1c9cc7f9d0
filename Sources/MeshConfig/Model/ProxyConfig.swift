/// The whole configuration of one proxy process: what `swiftmesh proxy --config`
/// reads. Immutable once decoded and validated; a reload builds a new one.
public struct ProxyConfig: Sendable, Equatable {
    /// The admin listener (`/ready`, `/metrics`, `/config`, `/clusters`); none when absent.
    public var admin: AdminConfig?
    /// Where requests enter, each with its ordered routes.
    public var listeners: [ListenerConfig]
    /// Named sets of endpoints that routes send requests to.
    public var clusters: [ClusterConfig]
    /// How long a draining proxy (SIGTERM, SIGINT) lets in-flight requests finish. Default 15s.
    public var drainTimeout: MeshDuration
    /// One JSON line per request, to standard output or a file; none when absent.
    public var accessLog: AccessLogConfig?
    /// A span per request, exported over OTLP; none when absent.
    public var tracing: TracingConfig?

    public static let defaultDrainTimeout = MeshDuration.seconds(15)

    public init(
        admin: AdminConfig? = nil,
        listeners: [ListenerConfig],
        clusters: [ClusterConfig],
        drainTimeout: MeshDuration = ProxyConfig.defaultDrainTimeout,
        accessLog: AccessLogConfig? = nil,
        tracing: TracingConfig? = nil
    ) {
        self.tracing = tracing
        self.admin = admin
        self.listeners = listeners
        self.clusters = clusters
        self.drainTimeout = drainTimeout
        self.accessLog = accessLog
    }

    /// The cluster named `name`, if any.
    public func cluster(named name: String) -> ClusterConfig? {
        clusters.first { $0.name == name }
    }
}

public struct AdminConfig: Sendable, Equatable {
    /// The address the admin HTTP server binds.
    public var listen: HostPort

    public init(listen: HostPort) {
        self.listen = listen
    }
}
