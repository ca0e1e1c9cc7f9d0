/// Renders a `StatsSnapshot` in the Prometheus text exposition format (0.0.4).
/// Lines are sorted so scrapes diff cleanly.
enum PrometheusExposition {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Each route's count of its listener's newest routes: a counter that
    /// starts again from 0 when the routes change, as after a restart.
    private static func currentRouteMatches(_ stats: StatsSnapshot) -> [StatsSnapshot.RouteMatchLabels: UInt64] {
        var newest: [String: Int] = [:]
        for key in stats.routeMatches.keys {
            newest[key.listener] = max(newest[key.listener] ?? key.routesVersion, key.routesVersion)
        }
        return stats.routeMatches.filter { newest[$0.key.listener] == $0.key.routesVersion }
    }

    static func render(_ stats: StatsSnapshot) -> String {
        var out = ""
        family(&out, "swiftmesh_requests_total", "counter",
               "Requests that finished, by direction, listener, cluster, destination service, endpoint, "
                   + "status class and gRPC status (empty for HTTP requests).",
               stats.requests.map { key, value in
                   (labels(routeLabels(key.route).merging([
                       "endpoint": key.endpoint, "status_class": key.statusClass, "grpc_status": key.grpcStatus,
                   ]) { $1 }), "\(value)")
               })
        var durationLines: [(String, String)] = []
        for (key, tally) in stats.routes {
            let base = routeLabels(key)
            let histogram = tally.durations
            var cumulative: UInt64 = 0
            for (slot, bound) in DurationHistogram.boundsSeconds.enumerated() {
                cumulative += histogram.counts[slot]
                durationLines.append(("_bucket" + labels(base.merging(["le": formatBound(bound)]) { $1 }), "\(cumulative)"))
            }
            durationLines.append(("_bucket" + labels(base.merging(["le": "+Inf"]) { $1 }), "\(histogram.count)"))
            durationLines.append(("_sum" + labels(base), formatSeconds(histogram.sumNanoseconds)))
            durationLines.append(("_count" + labels(base), "\(histogram.count)"))
        }
        out += "# HELP swiftmesh_request_duration_seconds Time from a request's first byte to its response's last byte.\n"
        out += "# TYPE swiftmesh_request_duration_seconds histogram\n"
        for (suffix, value) in durationLines.sorted(by: { $0.0 < $1.0 }) {
            out += "swiftmesh_request_duration_seconds\(suffix) \(value)\n"
        }
        family(&out, "swiftmesh_request_body_bytes_total", "counter",
               "Request body bytes received from clients, by direction, listener, cluster and destination service.",
               stats.routes.map { (labels(routeLabels($0.key)), "\($0.value.bytesReceived)") })
        family(&out, "swiftmesh_response_body_bytes_total", "counter",
               "Response body bytes sent to clients, by direction, listener, cluster and destination service.",
               stats.routes.map { (labels(routeLabels($0.key)), "\($0.value.bytesSent)") })
        family(&out, "swiftmesh_proxy_errors_total", "counter",
               "Responses the proxy made itself, by listener and reason (the swiftmesh-proxy-error value).",
               stats.proxyErrors.map { key, value in (labels(["listener": key.listener, "reason": key.reason]), "\(value)") })
        family(&out, "swiftmesh_route_matches_total", "counter",
               "Requests each route matched, by listener and route (its place in the listener's routes, from 0).",
               currentRouteMatches(stats).map { key, value in
                   (labels(["listener": key.listener, "route": String(key.route)]), "\(value)")
               })
        family(&out, "swiftmesh_authorization_decisions_total", "counter",
               "Requests a listener's authorization decided, by listener, caller (the service of its mesh identity, "
                   + "none without a certificate, other for any other name) and decision (allow, deny).",
               stats.authorizations.map { key, value in
                   (labels(["listener": key.listener, "caller": key.caller, "decision": key.decision]), "\(value)")
               })
        family(&out, "swiftmesh_http2_peer_errors_total", "counter",
               "HTTP/2 errors of clients the proxy answered itself (a malformed request, a frame on a closed stream, "
                   + "a flood), by listener, code (RFC 9113) and scope (stream: RST_STREAM, connection: GOAWAY).",
               stats.http2PeerErrors.map { key, value in
                   (labels(["listener": key.listener, "code": key.code, "scope": key.scope]), "\(value)")
               })
        family(&out, "swiftmesh_listener_limit_reached_total", "counter",
               "Times a listener's per-client limit fired, by listener and limit: max_concurrent_streams (a stream "
                   + "refused), connection_buffer (a connection's unread response bytes reached "
                   + "perConnectionBufferLimitBytes: its streams stopped reading their endpoints), unread_answers (the "
                   + "proxy stopped reading requests from a client that left its answers unread), "
                   + "request_headers_timeout, stream_idle_timeout, cluster_share (429).",
               stats.limitsReached.map { key, value in
                   (labels(["listener": key.listener, "limit": key.limit]), "\(value)")
               })
        family(&out, "swiftmesh_downstream_tls_handshakes_total", "counter",
               "TLS handshakes on client connections, by listener and result (success, failure).",
               outcomes(stats.downstreamHandshakes, owner: "listener"))
        family(&out, "swiftmesh_downstream_connections_active", "gauge", "Open client connections, by listener.",
               stats.activeConnections.map { (labels(["listener": $0.key]), "\($0.value)") })
        family(&out, "swiftmesh_downstream_connections_total", "counter", "Client connections accepted, by listener.",
               stats.connectionsTotal.map { (labels(["listener": $0.key]), "\($0.value)") })
        family(&out, "swiftmesh_downstream_requests_active", "gauge", "Requests in flight, by listener.",
               stats.activeRequests.map { (labels(["listener": $0.key]), "\($0.value)") })
        let breakers = stats.circuitBreakers
        family(&out, "swiftmesh_cluster_requests_active", "gauge",
               "Requests in flight to a cluster, counted by its circuit breaker (limit: circuitBreaker.maxRequests).",
               breakers.map { (labels(["cluster": $0.key]), "\($0.value.requests)") })
        family(&out, "swiftmesh_cluster_requests_pending", "gauge",
               "Requests waiting for a connection or stream to a cluster (limit: circuitBreaker.maxPendingRequests).",
               breakers.map { (labels(["cluster": $0.key]), "\($0.value.pendingRequests)") })
        family(&out, "swiftmesh_cluster_connections", "gauge",
               "Connections open or opening to a cluster's endpoints (limit: circuitBreaker.maxConnections).",
               breakers.map { (labels(["cluster": $0.key]), "\($0.value.connections)") })
        family(&out, "swiftmesh_cluster_retries_total", "counter",
               "Retries sent to a cluster, by what failed the try before (connect_failure, reset, refused_stream, "
                   + "per_try_timeout, status_<code>, grpc_status_<code>).",
               stats.retries.map { key, value in (labels(["cluster": key.cluster, "cause": key.cause]), "\(value)") })
        family(&out, "swiftmesh_cluster_timeouts_total", "counter",
               "Timeouts that ended a request or a try to a cluster: route (the route's timeout or the gRPC "
                   + "caller's deadline) or per_try (retries.perTryTimeout; the request may have been retried).",
               stats.timeouts.map { key, value in (labels(["cluster": key.cluster, "timeout": key.kind]), "\(value)") })
        family(&out, "swiftmesh_upstream_connections_total", "counter",
               "TCP connects to a cluster's endpoints, by result (success, failure).",
               outcomes(stats.upstreamConnects, owner: "cluster"))
        family(&out, "swiftmesh_upstream_tls_handshakes_total", "counter",
               "TLS handshakes on connections to a cluster's endpoints, by result (success, failure: "
                   + "a refused certificate or identity, or no answer within connectTimeout).",
               outcomes(stats.upstreamHandshakes, owner: "cluster"))
        family(&out, "swiftmesh_cluster_retries_active", "gauge",
               "Requests being retried to a cluster (limit: circuitBreaker.maxRetries).",
               breakers.map { (labels(["cluster": $0.key]), "\($0.value.retries)") })
        family(&out, "swiftmesh_cluster_retry_budget_exhausted_total", "counter",
               "Retries a cluster's retry budget refused.",
               breakers.map { (labels(["cluster": $0.key]), "\($0.value.retryBudgetExhaustions)") })
        let detectors = stats.outlierDetectors
        family(&out, "swiftmesh_cluster_outlier_ejections_total", "counter",
               "Endpoints ejected by a cluster's outlier detection, by what ejected them.",
               detectors.flatMap { cluster, snapshot in
                   [("consecutive_errors", snapshot.consecutiveErrorEjections), ("success_rate", snapshot.successRateEjections)]
                       .map { reason, count in (labels(["cluster": cluster, "reason": reason]), "\(count)") }
               })
        family(&out, "swiftmesh_cluster_endpoints_ejected", "gauge",
               "Endpoints of a cluster ejected by outlier detection now.",
               detectors.map { (labels(["cluster": $0.key]), "\($0.value.ejected)") })
        let checkers = stats.healthCheckers
        family(&out, "swiftmesh_cluster_health_checks_total", "counter",
               "Active health check probes of a cluster's endpoints, by result.",
               checkers.flatMap { cluster, snapshot in
                   [("passed", snapshot.passed), ("failed", snapshot.failed)]
                       .map { result, count in (labels(["cluster": cluster, "result": result]), "\(count)") }
               })
        family(&out, "swiftmesh_cluster_endpoints_unhealthy", "gauge",
               "Endpoints of a cluster failing their active health checks now, or not checked yet.",
               checkers.map { (labels(["cluster": $0.key]), "\($0.value.unhealthy)") })
        family(&out, "swiftmesh_cluster_overflow_total", "counter",
               "Times a cluster's circuit breaker limit turned a request away (maxRequests, maxPendingRequests), "
                   + "held it until a connection came free (maxConnections) or kept it from a retry (maxRetries).",
               breakers.flatMap { cluster, snapshot in
                   [("maxConnections", snapshot.connectionOverflows), ("maxPendingRequests", snapshot.pendingOverflows),
                    ("maxRequests", snapshot.requestOverflows), ("maxRetries", snapshot.retryOverflows)].map { limit, count in
                       (labels(["cluster": cluster, "limit": limit]), "\(count)")
                   }
               })
        if let spans = stats.spans {
            family(&out, "swiftmesh_tracing_spans_total", "counter",
                   "Spans sent to the OTLP receiver (exported), or dropped: the export queue was full, or the "
                       + "receiver failed or refused them.",
                   [(labels(["result": "exported"]), "\(spans.exported)"), (labels(["result": "dropped"]), "\(spans.dropped)")])
        }
        return out
    }

    private static func routeLabels(_ route: StatsSnapshot.RouteLabels) -> [String: String] {
        ["direction": route.direction, "listener": route.listener, "cluster": route.cluster,
         "destination_service": route.service]
    }

    private static func outcomes(_ counts: [StatsSnapshot.OutcomeLabels: UInt64], owner: String) -> [(String, String)] {
        counts.map { key, value in
            (labels([owner: key.owner, "result": key.succeeded ? "success" : "failure"]), "\(value)")
        }
    }

    private static func family(_ out: inout String, _ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for (labels, value) in samples.sorted(by: { $0.0 < $1.0 }) {
            out += "\(name)\(labels) \(value)\n"
        }
    }

    private static func labels(_ pairs: [String: String]) -> String {
        let body = pairs.keys.sorted().map { key in "\(key)=\"\(escape(pairs[key] ?? ""))\"" }.joined(separator: ",")
        return "{\(body)}"
    }

    private static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    private static func formatBound(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }

    private static func formatSeconds(_ nanoseconds: Int64) -> String {
        String(Double(nanoseconds) / 1e9)
    }
}
