import MeshConfig
import NIOCore
import NIOHTTP1

/// What the proxy decided for one request and why, kept in its loop's
/// `RecentRequests` so that `/requests/{id}` (and `swiftmesh explain`) can
/// tell a user what happened to a call: the authorization decision, the
/// route, the endpoints the cluster could pick from, every try with its
/// endpoint, timings and outcome, and how it ended.
struct RequestRecord {
    /// One attempt on one endpoint.
    struct Try {
        var endpoint: String
        /// Since the request started.
        var startedAt: TimeAmount
        /// When the endpoint's connection or stream was attached (after any pool wait or connect).
        var attachedAt: TimeAmount?
        /// When the endpoint's response head arrived.
        var answeredAt: TimeAmount?
        /// Why the try ended when it was retried (a retry cause: `connect_failure`,
        /// `reset`, `status_503`, …); nil for the try that decided the request.
        var retriedBecause: String?
    }

    /// The cluster's circuit breaker as the request met it: requests in
    /// flight to the cluster, this one included, and, when the request had to
    /// wait for a connection or stream, the requests waiting. A request the
    /// breaker refused shows its count at the limit.
    struct BreakerUse {
        var requests: Int
        var maxRequests: Int
        var pendingRequests: Int?
        var maxPendingRequests: Int
    }

    /// An endpoint balancing could not pick, and why.
    struct LeftOutEndpoint {
        var endpoint: String
        var reason: String
    }

    var requestID: String
    var startNanoseconds: Int64
    var duration: TimeAmount
    var listener: String
    var direction: TrafficDirection
    var method: HTTPMethod
    /// Without the query, which may carry secrets.
    var path: Substring
    var isGRPC: Bool
    var isHTTP2: Bool
    var caller: String?
    /// nil: the listener has no authorization.
    var authorization: ListenerAuthorization.Decision?
    var routeIndex: Int?
    var cluster: String?
    /// The cluster's service (`destinationService`).
    var service: String?
    /// At the first pick: endpoints the balancer could choose from, of all the cluster's.
    var pickable: (count: Int, of: Int)?
    /// Filled when no endpoint was pickable.
    var leftOut: [LeftOutEndpoint] = []
    var breaker: BreakerUse?
    var faultDelay: TimeAmount?
    /// The first try inline, later ones in the array: a request without retries allocates nothing for them.
    var firstTry: Try?
    var laterTries: [Try] = []
    var status: Int?
    var grpcStatus: Int?
    var proxyError: ProxyError?
    var flags: RequestFlags
    var bytesReceived: Int
    var bytesSent: Int

    var tries: [Try] { (firstTry.map { [$0] } ?? []) + laterTries }
}

/// A record as the admin API answers it.
extension RequestRecord {
    var json: [String: Any] {
        var object: [String: Any] = [
            "requestId": requestID,
            "listener": listener,
            "direction": direction.rawValue,
            "startTime": Self.timestamp(startNanoseconds),
            "durationMs": Self.millis(duration),
            "method": method.rawValue,
            "path": String(path),
            "protocol": isHTTP2 ? "HTTP/2" : "HTTP/1.1",
            "grpc": isGRPC,
            "bytesReceived": bytesReceived,
            "bytesSent": bytesSent,
            "flags": flags.names,
        ]
        object["caller"] = caller
        if let authorization {
            object["authorization"] = [
                "decision": authorization.allowed ? "allow" : "deny",
                "rule": authorization.rule.map { "rules[\($0)]" } ?? "default",
            ]
        }
        object["route"] = routeIndex.map { "routes[\($0)]" }
        object["cluster"] = cluster
        object["service"] = service
        if let pickable {
            var endpoints: [String: Any] = ["pickable": pickable.count, "total": pickable.of]
            if !leftOut.isEmpty {
                endpoints["leftOut"] = leftOut.map { ["endpoint": $0.endpoint, "reason": $0.reason] }
            }
            object["endpoints"] = endpoints
        }
        if let breaker {
            var use: [String: Any] = ["requests": breaker.requests, "maxRequests": breaker.maxRequests]
            if let pending = breaker.pendingRequests {
                use["pendingRequests"] = pending
                use["maxPendingRequests"] = breaker.maxPendingRequests
            }
            object["circuitBreaker"] = use
        }
        object["faultDelayMs"] = faultDelay.map(Self.millis)
        object["tries"] = tries.map { attempt -> [String: Any] in
            var entry: [String: Any] = ["endpoint": attempt.endpoint, "startedMs": Self.millis(attempt.startedAt)]
            entry["attachedMs"] = attempt.attachedAt.map(Self.millis)
            entry["answeredMs"] = attempt.answeredAt.map(Self.millis)
            entry["retriedBecause"] = attempt.retriedBecause
            return entry
        }
        object["status"] = status
        object["grpcStatus"] = grpcStatus
        if let proxyError {
            object["proxyError"] = ["reason": proxyError.reason, "message": proxyError.message]
        }
        return object
    }

    private static func millis(_ amount: TimeAmount) -> Double {
        (Double(amount.nanoseconds) / 1_000).rounded() / 1_000
    }

    private static func timestamp(_ nanoseconds: Int64) -> String {
        var buffer = ByteBuffer()
        var clock = AccessLogClock()
        clock.writeTimestamp(nanoseconds, into: &buffer)
        return String(buffer: buffer)
    }
}
