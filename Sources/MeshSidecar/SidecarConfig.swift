import MeshConfig

/// The proxy configuration of a sidecar, built from its options and the
/// control plane's latest snapshot, in the proxy's own vocabulary:
///
/// - listener `inbound` (the instance's address) sends everything to
///   cluster `local_app`, the app. It exists once the sidecar has its
///   certificate, and takes mutual TLS 1.3 from certificates chained to the
///   mesh's root (plaintext too when `--inbound-tls permissive`); the
///   service's AuthorizationPolicy decides who may call what on it;
/// - listener `outbound_<service>` for each upstream tries the routes of the
///   service's ServicePolicy, then sends everything else to cluster
///   `<service>`: every instance of the service (their sidecars' inbound
///   listeners), over HTTP/2 in mutual TLS 1.3, checking that each presents
///   the service's identity (instances outside the mesh: plaintext);
/// - a policy route's destination with a subset is cluster
///   `<service>[key=value,...]`: the instances whose labels include the subset.
///
/// A service's clusters take their settings from its own ServicePolicy, and
/// the mesh's defaults for what it leaves out, the ones Envoy-based meshes
/// ship: least-request balancing; two retries, within the retry budget, of
/// tries that failed before the instance answered (connect failure, reset,
/// refused stream) or that it answered UNAVAILABLE, CANCELLED or 503; and
/// outlier detection that ejects an instance after five failures in a row.
/// The names use `_` and `[`, which service names cannot, so they never clash.
public enum SidecarConfig {
    public static let inboundListener = "inbound"
    public static let appCluster = "local_app"

    public static func outboundListener(_ service: String) -> String {
        "outbound_\(service)"
    }

    /// One service as a snapshot gives it.
    public struct Upstream: Sendable, Equatable {
        public struct Instance: Sendable, Equatable {
            public var address: HostPort
            public var labels: [String: String]
            /// The SPIFFE ID its sidecar proves; nil: outside the mesh, plaintext.
            public var identity: String?

            public init(address: HostPort, labels: [String: String] = [:], identity: String? = nil) {
                self.address = address
                self.labels = labels
                self.identity = identity
            }
        }

        public var protocolKind: UpstreamProtocol
        public var instances: [Instance]
        /// The service's ServicePolicy; nil: the mesh's defaults.
        public var policy: ServicePolicy?

        public init(protocolKind: UpstreamProtocol = .http2, instances: [Instance], policy: ServicePolicy? = nil) {
            self.protocolKind = protocolKind
            self.instances = instances
            self.policy = policy
        }
    }

    public static let defaultRetries = RetryPolicy(
        attempts: 2, conditions: [.connectFailure, .reset, .refusedStream, .unavailable, .cancelled, .retriableStatusCodes],
        retriableStatusCodes: [503])

    /// The configuration for `options` with `upstreams` (the services the app
    /// calls and those their policies route to), the app speaking
    /// `appProtocol`, the sidecar's `certificate` (none yet: no inbound
    /// listener) and its service's `authorization` (none: every caller may
    /// call anything). A service missing from `upstreams` (no snapshot yet) has no instances.
    static func build(
        _ options: SidecarOptions, upstreams: [String: Upstream], appProtocol: UpstreamProtocol,
        certificate: WorkloadCertificate?, authorization: AuthorizationPolicy? = nil
    ) -> ProxyConfig {
        let inbound = certificate.map { certificate in
            ListenerConfig(
                name: inboundListener, listen: options.spec.inbound,
                routes: [RouteConfig(match: RouteMatch(), action: .cluster(appCluster))],
                tls: inboundTLS(certificate, mode: options.inboundTLS),
                authorization: authorization?.listenerAuthorization(trustDomain: certificate.trustDomain),
                direction: .inbound)
        }
        let app = ClusterConfig(
            name: appCluster, service: options.spec.service, protocolKind: appProtocol,
            discovery: .staticEndpoints([StaticEndpoint(address: options.spec.app)]))
        var clusters: [String: ClusterConfig] = [:]
        func addCluster(service: String, subset: [String: String]) -> String {
            let name = PolicyDestination.clusterName(service: service, subset: subset)
            if clusters[name] == nil {
                clusters[name] = cluster(
                    named: name, service: service, subset: subset, upstream: upstreams[service], certificate: certificate)
            }
            return name
        }
        let outbound = options.spec.upstreams.map { called in
            let policyRoutes = upstreams[called.service]?.policy?.routes ?? []
            let routes = policyRoutes.map { route in
                let destinations = (route.split ?? [PolicyDestination(service: called.service, weight: 1)]).map {
                    WeightedCluster(cluster: addCluster(service: $0.service, subset: $0.subset), weight: $0.weight)
                }
                return RouteConfig(
                    match: route.match,
                    action: destinations.count == 1 ? .cluster(destinations[0].cluster) : .split(destinations),
                    timeout: route.timeout, requestHeadersToAdd: route.requestHeadersToAdd,
                    requestHeadersToRemove: route.requestHeadersToRemove, fault: route.fault,
                    retries: route.retries ?? defaultRetries)
            }
            let catchAll = RouteConfig(
                match: RouteMatch(), action: .cluster(addCluster(service: called.service, subset: [:])), retries: defaultRetries)
            return ListenerConfig(
                name: outboundListener(called.service), listen: called.listen, routes: routes + [catchAll],
                limits: .appOutbound)
        }
        return ProxyConfig(
            admin: options.spec.admin.map(AdminConfig.init(listen:)),
            listeners: (inbound.map { [$0] } ?? []) + outbound,
            clusters: [app] + clusters.keys.sorted().compactMap { clusters[$0] },
            accessLog: options.accessLog, tracing: options.tracing)
    }

    /// What the inbound listener applies before the service's policy is known.
    static func denyAll(service: String) -> AuthorizationPolicy {
        AuthorizationPolicy(service: service, defaultAction: .deny)
    }

    /// Mutual TLS from other sidecars: permissive mode also takes plaintext,
    /// and so cannot require a certificate of everyone.
    private static func inboundTLS(_ certificate: WorkloadCertificate, mode: ListenerTLSMode) -> ListenerTLSConfig {
        ListenerTLSConfig(
            certificate: .inMemory(certificate.certificatePEM), privateKey: .inMemory(certificate.privateKeyPEM),
            clientCertificate: mode == .strict ? .required : .optional,
            caCertificates: .inMemory(certificate.trustBundlePEM), mode: mode, minimumVersion: .tls13)
    }

    /// Mutual TLS to a service whose instances are in the mesh, each of which
    /// must prove the service's identity; nil (plaintext) for instances outside it.
    private static func outboundTLS(_ upstream: Upstream?, certificate: WorkloadCertificate?) -> ClusterTLSConfig? {
        guard let certificate, let identity = upstream?.instances.first?.identity else { return nil }
        return ClusterTLSConfig(
            caCertificates: .inMemory(certificate.trustBundlePEM), certificate: .inMemory(certificate.certificatePEM),
            privateKey: .inMemory(certificate.privateKeyPEM), identities: [identity], minimumVersion: .tls13)
    }

    private static func cluster(
        named name: String, service: String, subset: [String: String], upstream: Upstream?, certificate: WorkloadCertificate?
    ) -> ClusterConfig {
        let endpoints = (upstream?.instances ?? [])
            .filter { instance in subset.allSatisfy { instance.labels[$0.key] == $0.value } }
            .map { StaticEndpoint(address: $0.address) }
        return ClusterConfig(
            name: name, service: service, protocolKind: upstream?.protocolKind ?? .http2,
            discovery: .staticEndpoints(endpoints), settings: upstream?.policy?.effectiveSettings ?? .meshDefaults,
            tls: outboundTLS(upstream, certificate: certificate))
    }
}
