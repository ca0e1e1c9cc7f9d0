/// A port where requests enter. HTTP/1.1 and HTTP/2 (h2c, prior knowledge) are
/// detected per connection from the first bytes.
public struct ListenerConfig: Sendable, Equatable {
    /// Unique among listeners; used in metrics and logs.
    public var name: String
    /// The address to bind: an IP literal and a port.
    public var listen: HostPort
    /// Tried in order; the first route whose match holds handles the request.
    public var routes: [RouteConfig]
    /// Bounds on what one client connection may make the proxy hold.
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

/// What one client connection may make the proxy hold: the size of a
/// request head, the streams it keeps open, the bytes buffered toward it,
/// the time it takes to send a head or to say anything at all, and its share
/// of a cluster's capacity. Every limit has a default, so a listener
/// configured with none is still bounded; each one that fires is counted in
/// `swiftmesh_listener_limit_reached_total` (a 431 is counted as the proxy error).
public struct ListenerLimits: Sendable, Equatable {
    /// Total bytes of header names and values in one request head; over it, 431. Default 60 KiB.
    public var maxRequestHeaderBytes: Int
    /// Number of header fields in one request head; over it, 431. Default 100.
    public var maxRequestHeaders: Int
    /// HTTP/2 streams one client connection may have open at once (its
    /// SETTINGS_MAX_CONCURRENT_STREAMS); a stream over it is refused
    /// (RST_STREAM REFUSED_STREAM). Default 100, the edge value HAProxy and
    /// Envoy recommend; a sidecar's outbound listeners take 1024 (`appOutbound`).
    public var maxConcurrentStreams: Int
    /// Bytes the proxy may hold for one client connection in each direction,
    /// over all its streams (Envoy's `per_connection_buffer_limit_bytes`):
    /// response bytes the client has not read yet, and request bytes the
    /// endpoint has not taken. Past it, the proxy stops reading from the
    /// side that fills it until the other drains. Default 1 MiB.
    public var perConnectionBufferLimitBytes: Int
    /// The whole request head must arrive within this long after its first
    /// byte (slowloris); HTTP/1.1 answers 408, HTTP/2 ends the connection
    /// (a header block cut short leaves it unusable). Default 10s.
    public var requestHeadersTimeout: MeshDuration
    /// A request or stream with no bytes either way for this long ends: 408
    /// while the client was still sending, 504 while the endpoint was to
    /// answer, a reset (HTTP/2) or a close (HTTP/1.1) once the response had
    /// started. Default 5m, as Envoy's `stream_idle_timeout`.
    public var streamIdleTimeout: MeshDuration
    /// The percent of each cluster's `circuitBreaker.maxRequests` one client
    /// connection may hold in flight (rounded up, at least one request);
    /// past it, 429 `cluster_share`, so one client cannot lock the others
    /// out. Default 50; 100 on a sidecar's outbound listeners, which only
    /// the app beside them reaches.
    public var maxShareOfClusterRequests: Int

    public static let defaultMaxRequestHeaderBytes = 60 * 1024
    public static let defaultMaxRequestHeaders = 100
    public static let defaultMaxConcurrentStreams = 100
    public static let defaultPerConnectionBufferLimitBytes = 1 << 20
    public static let defaultRequestHeadersTimeout = MeshDuration.seconds(10)
    public static let defaultStreamIdleTimeout = MeshDuration.seconds(300)
    public static let defaultMaxShareOfClusterRequests = 50
    /// The smallest `perConnectionBufferLimitBytes`: one HTTP/2 frame of the
    /// default size fits, so every stream can make progress.
    public static let minPerConnectionBufferLimitBytes = 16 * 1024

    public init(
        maxRequestHeaderBytes: Int = ListenerLimits.defaultMaxRequestHeaderBytes,
        maxRequestHeaders: Int = ListenerLimits.defaultMaxRequestHeaders,
        maxConcurrentStreams: Int = ListenerLimits.defaultMaxConcurrentStreams,
        perConnectionBufferLimitBytes: Int = ListenerLimits.defaultPerConnectionBufferLimitBytes,
        requestHeadersTimeout: MeshDuration = ListenerLimits.defaultRequestHeadersTimeout,
        streamIdleTimeout: MeshDuration = ListenerLimits.defaultStreamIdleTimeout,
        maxShareOfClusterRequests: Int = ListenerLimits.defaultMaxShareOfClusterRequests
    ) {
        self.maxRequestHeaderBytes = maxRequestHeaderBytes
        self.maxRequestHeaders = maxRequestHeaders
        self.maxConcurrentStreams = maxConcurrentStreams
        self.perConnectionBufferLimitBytes = perConnectionBufferLimitBytes
        self.requestHeadersTimeout = requestHeadersTimeout
        self.streamIdleTimeout = streamIdleTimeout
        self.maxShareOfClusterRequests = maxShareOfClusterRequests
    }

    /// A sidecar's outbound listeners: only the app beside the sidecar
    /// connects (on loopback), and a gRPC app sends all its calls to a
    /// service over one HTTP/2 connection. Limits meant to keep one client
    /// from crowding out others would only cap that app below the
    /// cluster's own circuit breaker, so it may open as many streams as the
    /// proxy's upstream side would (1024) and hold all of a cluster's `maxRequests`.
    public static let appOutbound = ListenerLimits(maxConcurrentStreams: 1024, maxShareOfClusterRequests: 100)
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
