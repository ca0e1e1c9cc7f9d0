/// What the same cluster shares across every event loop: its circuit
/// breaker, and with outlier detection or health checks, its endpoints'
/// health and the detector that decides ejections. `ProxyServer` keeps one
/// per cluster and hands it to each loop with every published config.
struct SharedClusterState: Sendable {
    var breaker: CircuitBreaker
    var outlierDetector: OutlierDetector?
    var healthRegistry: EndpointHealthRegistry?
    /// How connections to the endpoints start TLS; nil: plaintext. A new
    /// context (a renewed client certificate) gives the cluster new
    /// connections; requests in flight finish on the old ones.
    var upstreamTLS: UpstreamTLS?
}
