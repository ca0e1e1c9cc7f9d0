/// What the proxy did to one request, beyond its final answer: a set, as a
/// request may be delayed, retried after a per-try timeout, and then time
/// out. The access log (`flags`), `explain` and its record show them; each
/// name is documented in docs/operations.md ("Request flags") with the Envoy response flag
/// it corresponds to, where Envoy has one.
struct RequestFlags: OptionSet, Sendable, Hashable {
    let rawValue: UInt32

    init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Held by the route's fault injection (Envoy `DI`).
    static let faultDelayed = RequestFlags(rawValue: 1 << 0)
    /// Answered by the route's fault injection (Envoy `FI`).
    static let faultAborted = RequestFlags(rawValue: 1 << 1)
    /// No route matched (Envoy `NR`).
    static let noRoute = RequestFlags(rawValue: 1 << 2)
    /// The listener's authorization denied the caller (Envoy's RBAC filter).
    static let denied = RequestFlags(rawValue: 1 << 3)
    /// The request did not parse or broke the listener's header limits (Envoy `DPE`).
    static let badRequest = RequestFlags(rawValue: 1 << 4)
    /// Balancing skipped endpoints that were ejected or failing health checks.
    static let endpointsSkipped = RequestFlags(rawValue: 1 << 5)
    /// No endpoint was left to pick (Envoy `UH`).
    static let noEndpoints = RequestFlags(rawValue: 1 << 6)
    /// The cluster's circuit breaker refused it (Envoy `UO`).
    static let overflow = RequestFlags(rawValue: 1 << 7)
    /// The client's connection held its share of the cluster's requests.
    static let clusterShare = RequestFlags(rawValue: 1 << 8)
    /// A try could not connect (Envoy `UF`).
    static let connectFailure = RequestFlags(rawValue: 1 << 10)
    /// A try's connection or stream failed or was reset (Envoy `UR`).
    static let upstreamReset = RequestFlags(rawValue: 1 << 11)
    /// An endpoint refused a try unprocessed (REFUSED_STREAM, GOAWAY).
    static let refused = RequestFlags(rawValue: 1 << 12)
    /// A try got no response head within the route's `perTryTimeout`.
    static let perTryTimeout = RequestFlags(rawValue: 1 << 13)
    /// A failed try was tried again.
    static let retried = RequestFlags(rawValue: 1 << 14)
    /// The route's timeout or the gRPC client's deadline passed (Envoy `UT`).
    static let timeout = RequestFlags(rawValue: 1 << 15)
    /// No bytes either way for the listener's `streamIdleTimeout` (Envoy `SI`).
    static let streamIdleTimeout = RequestFlags(rawValue: 1 << 16)
    /// The request head did not arrive within `requestHeadersTimeout`.
    static let requestHeadersTimeout = RequestFlags(rawValue: 1 << 17)
    /// The client went away before the response ended (Envoy `DC`).
    static let clientGone = RequestFlags(rawValue: 1 << 18)

    /// Every flag with its name, in the order they are shown.
    static let named: [(RequestFlags, String)] = [
        (.faultDelayed, "fault_delayed"), (.faultAborted, "fault_aborted"), (.noRoute, "no_route"),
        (.denied, "denied"), (.badRequest, "bad_request"), (.endpointsSkipped, "endpoints_skipped"),
        (.noEndpoints, "no_endpoints"), (.overflow, "overflow"), (.clusterShare, "cluster_share"),
        (.connectFailure, "connect_failure"),
        (.upstreamReset, "upstream_reset"), (.refused, "refused"), (.perTryTimeout, "per_try_timeout"),
        (.retried, "retried"), (.timeout, "timeout"), (.streamIdleTimeout, "stream_idle_timeout"),
        (.requestHeadersTimeout, "request_headers_timeout"), (.clientGone, "client_gone"),
    ]

    /// The names of the flags set, in `named` order.
    var names: [String] {
        Self.named.compactMap { contains($0.0) ? $0.1 : nil }
    }

    /// The flag a proxy error sets.
    init(_ error: ProxyError) {
        self = switch error {
        case .noRoute: .noRoute
        case .noEndpoints: .noEndpoints
        case .connectFailure: .connectFailure
        case .upstreamReset: .upstreamReset
        case .timeout: .timeout
        case .perTryTimeout: .perTryTimeout
        case .badRequest, .headersTooLarge, .tooManyHeaders: .badRequest
        case .faultAbort: .faultAborted
        case .overflow: .overflow
        case .forbidden: .denied
        case .requestHeadersTimeout: .requestHeadersTimeout
        case .streamIdleTimeout: .streamIdleTimeout
        case .clusterShare: .clusterShare
        }
    }

    /// The flag a try's failure sets.
    init(_ failure: TryFailure) {
        self = switch failure {
        case .connectFailure: .connectFailure
        case .reset: .upstreamReset
        case .refused: .refused
        case .perTryTimeout: .perTryTimeout
        case .status, .grpcStatus: []
        }
    }
}
