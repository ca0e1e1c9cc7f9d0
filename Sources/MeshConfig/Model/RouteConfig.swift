/// One routing rule: when `match` holds, send the request to `action`.
public struct RouteConfig: Sendable, Equatable {
    public var match: RouteMatch
    public var action: RouteAction
    /// The whole request's deadline, from the first byte received to the last
    /// byte of the response. Nil: no deadline (long-lived streams stay open).
    public var timeout: MeshDuration?
    /// Headers set on the request before it goes upstream (replacing any of the same name).
    public var requestHeadersToAdd: [HeaderValue]
    /// Header names removed from the request before it goes upstream.
    public var requestHeadersToRemove: [String]
    /// Delays and aborts injected on purpose; nil: none.
    public var fault: FaultConfig?
    /// Failed tries sent again; nil: no retries.
    public var retries: RetryPolicy?

    public init(
        match: RouteMatch,
        action: RouteAction,
        timeout: MeshDuration? = nil,
        requestHeadersToAdd: [HeaderValue] = [],
        requestHeadersToRemove: [String] = [],
        fault: FaultConfig? = nil,
        retries: RetryPolicy? = nil
    ) {
        self.match = match
        self.action = action
        self.timeout = timeout
        self.requestHeadersToAdd = requestHeadersToAdd
        self.requestHeadersToRemove = requestHeadersToRemove
        self.fault = fault
        self.retries = retries
    }
}

/// All present conditions must hold. An empty match matches every request.
public struct RouteMatch: Sendable, Equatable {
    /// The path (without query) starts with this.
    public var pathPrefix: String?
    /// The path (without query) equals this.
    public var path: String?
    /// The method is one of these (upper case). Nil: any method.
    public var methods: [String]?
    /// Every header condition holds.
    public var headers: [HeaderMatch]
    /// gRPC sugar: the path is `/<service>/<method>` (or `/<service>/` when method is nil).
    public var grpc: GRPCMatch?

    public init(
        pathPrefix: String? = nil,
        path: String? = nil,
        methods: [String]? = nil,
        headers: [HeaderMatch] = [],
        grpc: GRPCMatch? = nil
    ) {
        self.pathPrefix = pathPrefix
        self.path = path
        self.methods = methods
        self.headers = headers
        self.grpc = grpc
    }
}

public struct GRPCMatch: Sendable, Equatable {
    /// Fully qualified service name, e.g. `user.UserService`.
    public var service: String
    /// Method name, e.g. `GetUser`. Nil: every method of the service.
    public var method: String?

    public init(service: String, method: String? = nil) {
        self.service = service
        self.method = method
    }
}

/// A condition on one request header (name compared case-insensitively).
public struct HeaderMatch: Sendable, Equatable {
    public enum Condition: Sendable, Equatable {
        /// Some value of the header equals this.
        case exact(String)
        /// Some value of the header starts with this.
        case prefix(String)
        /// The header is present (true) or absent (false).
        case present(Bool)
    }

    public var name: String
    public var condition: Condition

    public init(name: String, condition: Condition) {
        self.name = name
        self.condition = condition
    }
}

/// Where a matched request goes.
public enum RouteAction: Sendable, Equatable {
    /// Every request to one cluster.
    case cluster(String)
    /// Each request to one of several clusters, chosen by weight (canary releases).
    case split([WeightedCluster])

    /// The clusters a request may go to.
    public var clusterNames: [String] {
        switch self {
        case .cluster(let name): [name]
        case .split(let entries): entries.map(\.cluster)
        }
    }
}

public struct WeightedCluster: Sendable, Equatable {
    public var cluster: String
    /// Relative share; positive.
    public var weight: Int

    public init(cluster: String, weight: Int) {
        self.cluster = cluster
        self.weight = weight
    }
}

public struct HeaderValue: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
