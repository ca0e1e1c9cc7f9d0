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
    /// How request paths are read before routing and authorization, and forwarded.
    public var pathNormalization: PathNormalizationConfig

    public static let defaultIdleTimeout = MeshDuration.seconds(3600)

    public init(
        name: String, listen: HostPort, routes: [RouteConfig], limits: ListenerLimits = ListenerLimits(),
        idleTimeout: MeshDuration = ListenerConfig.defaultIdleTimeout, tls: ListenerTLSConfig? = nil,
        authorization: AuthorizationConfig? = nil, direction: TrafficDirection = .outbound,
        pathNormalization: PathNormalizationConfig? = nil
    ) {
        self.authorization = authorization
        self.pathNormalization = pathNormalization ?? PathNormalizationConfig(authorized: authorization != nil)
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

/// How a listener reads a request's path before routing and authorization
/// decide on it, and what it forwards: the same path the app will read, so
/// that a rule for `/admin/*` cannot be passed by `/%61dmin/x`, `/a/../admin/x`
/// or `//admin/x`. As Envoy's `normalize_path`, `merge_slashes` and
/// `path_with_escaped_slashes_action`.
public struct PathNormalizationConfig: Sendable, Equatable {
    /// What to do with `%2F` and `%5C` (an encoded slash or backslash),
    /// which apps disagree about: some decode them into separators.
    public enum EscapedSlashes: String, Sendable, Equatable, CaseIterable {
        /// 400: the request is refused.
        case reject
        /// Left encoded, part of their segment, for apps that never decode them.
        case keep
        /// Decoded into `/` before the path is normalized and forwarded.
        case unescape
    }

    /// RFC 3986 section 6 normalization: percent-encoded unreserved
    /// characters decoded, other escapes upper-cased, `.` and `..` segments
    /// resolved; off, paths are routed and forwarded as sent (and a listener
    /// with authorization refuses those normalization would change). Default true.
    public var enabled: Bool
    /// `//` read as `/`. Default true.
    public var mergeSlashes: Bool
    /// Default `reject` on a listener with authorization, where a rule must
    /// not meet a path an app reads otherwise; `keep` elsewhere, where
    /// paths with encoded slashes (object keys, project ids) keep working.
    public var escapedSlashes: EscapedSlashes

    public init(enabled: Bool = true, mergeSlashes: Bool = true, escapedSlashes: EscapedSlashes = .reject) {
        self.enabled = enabled
        self.mergeSlashes = mergeSlashes
        self.escapedSlashes = escapedSlashes
    }

    /// The defaults for a listener with or without authorization.
    public init(authorized: Bool) {
        self.init(escapedSlashes: authorized ? .reject : .keep)
    }
}
