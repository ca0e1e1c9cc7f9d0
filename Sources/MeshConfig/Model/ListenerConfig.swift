/// A port where requests enter. HTTP/1.1 and HTTP/2 (h2c, prior knowledge) are
/// detected per connection from the first bytes.
public struct ListenerConfig: Sendable, Equatable {
    /// Unique among listeners; used in metrics and logs.
    public var name: String
    /// The address to bind: an IP literal and a port.
    public var listen: HostPort
    /// Tried in order; the first route whose match holds handles the request.
    public var routes: [RouteConfig]
    /// Bounds on what a client may send in one request head.
    public var limits: ListenerLimits
    /// A client connection with no request in progress for this long is closed. Default 1h.
    public var idleTimeout: MeshDuration
    /// TLS the listener terminates; nil: plaintext.
    public var tls: ListenerTLSConfig?
    /// Who may call what, decided before routing; nil: every request goes on.
    public var authorization: AuthorizationConfig?
    /// Which way the listener's traffic goes, seen from the service beside
    /// the proxy: the `direction` label of its metrics. Default outbound.
    public var direction: TrafficDirection

    public static let defaultIdleTimeout = MeshDuration.seconds(3600)

    public init(
        name: String, listen: HostPort, routes: [RouteConfig], limits: ListenerLimits = ListenerLimits(),
        idleTimeout: MeshDuration = ListenerConfig.defaultIdleTimeout, tls: ListenerTLSConfig? = nil,
        authorization: AuthorizationConfig? = nil, direction: TrafficDirection = .outbound
    ) {
        self.authorization = authorization
        self.direction = direction
        self.name = name
        self.listen = listen
        self.routes = routes
        self.limits = limits
        self.idleTimeout = idleTimeout
        self.tls = tls
    }
}

/// `inbound`: requests coming to the service beside the proxy (a sidecar's
/// inbound listener); `outbound`: requests it, or a front proxy's clients, send out.
public enum TrafficDirection: String, Sendable, Equatable, CaseIterable {
    case inbound
    case outbound
}

/// Request-head limits. A request over either gets 431.
public struct ListenerLimits: Sendable, Equatable {
    /// Total bytes of header names and values in one request head. Default 60 KiB.
    public var maxRequestHeaderBytes: Int
    /// Number of header fields in one request head. Default 100.
    public var maxRequestHeaders: Int

    public static let defaultMaxRequestHeaderBytes = 60 * 1024
    public static let defaultMaxRequestHeaders = 100

    public init(
        maxRequestHeaderBytes: Int = ListenerLimits.defaultMaxRequestHeaderBytes,
        maxRequestHeaders: Int = ListenerLimits.defaultMaxRequestHeaders
    ) {
        self.maxRequestHeaderBytes = maxRequestHeaderBytes
        self.maxRequestHeaders = maxRequestHeaders
    }
}
