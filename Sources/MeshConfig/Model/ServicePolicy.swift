/// The spec of a `ServicePolicy` resource: how sidecars send traffic to one
/// service, in the proxy's own vocabulary. Every key is optional; what is
/// left out keeps the mesh's defaults (see docs/mesh.md).
public struct ServicePolicy: Sendable, Equatable {
    /// The destination service the policy is for.
    public var service: String
    /// The cluster keys the policy sets, over `ClusterSettings.meshDefaults`.
    public var settings: ClusterSettings.Overrides
    /// Tried in order before the catch-all route that sends every other
    /// request to every instance of the service.
    public var routes: [PolicyRoute]

    public init(service: String, settings: ClusterSettings.Overrides = .init(), routes: [PolicyRoute] = []) {
        self.service = service
        self.settings = settings
        self.routes = routes
    }

    /// What sidecars' clusters for the service run with: the policy's keys
    /// over the mesh's defaults.
    public var effectiveSettings: ClusterSettings {
        settings.resolved(over: .meshDefaults)
    }

    /// The services the routes send traffic to, besides `service`, sorted.
    public var otherServices: [String] {
        Set(routes.flatMap { $0.split ?? [] }.map(\.service)).subtracting([service]).sorted()
    }
}

/// One route of a policy: a route of the proxy whose destinations are
/// services and subsets of their instances instead of clusters.
public struct PolicyRoute: Sendable, Equatable {
    public var match: RouteMatch
    public var timeout: MeshDuration?
    /// Nil: the mesh's default retries.
    public var retries: RetryPolicy?
    public var fault: FaultConfig?
    public var requestHeadersToAdd: [HeaderValue]
    public var requestHeadersToRemove: [String]
    /// Where matched requests go, by weight; nil: every instance of the policy's service.
    public var split: [PolicyDestination]?

    public init(
        match: RouteMatch, timeout: MeshDuration? = nil, retries: RetryPolicy? = nil, fault: FaultConfig? = nil,
        requestHeadersToAdd: [HeaderValue] = [], requestHeadersToRemove: [String] = [], split: [PolicyDestination]? = nil
    ) {
        self.match = match
        self.timeout = timeout
        self.retries = retries
        self.fault = fault
        self.requestHeadersToAdd = requestHeadersToAdd
        self.requestHeadersToRemove = requestHeadersToRemove
        self.split = split
    }
}

/// A share of a route's requests: the instances of `service` whose labels
/// include every label of `subset` (all of them for an empty subset).
public struct PolicyDestination: Sendable, Equatable {
    public var service: String
    public var subset: [String: String]
    public var weight: Int

    public init(service: String, subset: [String: String] = [:], weight: Int) {
        self.service = service
        self.subset = subset
        self.weight = weight
    }

    /// The name of the sidecars' cluster of `service`'s instances whose
    /// labels include `subset` (all of them when empty): `user`,
    /// `user[version=v2]`. `[` cannot be in a service name, so names never clash.
    public static func clusterName(service: String, subset: [String: String]) -> String {
        guard !subset.isEmpty else { return service }
        return "\(service)[\(labelsText(subset))]"
    }

    /// Labels as `key=value,key=value`, in key order: how names, tables and
    /// messages write a subset or an instance's labels.
    public static func labelsText(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
