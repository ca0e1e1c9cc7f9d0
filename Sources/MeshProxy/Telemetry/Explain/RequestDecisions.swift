import MeshConfig
import NIOCore
import NIOHTTP1

/// What an exchange notes while it runs, for its `RequestRecord`: plain
/// values set at each decision, so that noting costs the data path next to nothing.
struct RequestDecisions {
    var method: HTTPMethod = .GET
    var path: Substring = ""
    var authorization: ListenerAuthorization.Decision?
    var routeIndex: Int?
    var pickable: (count: Int, of: Int)?
    /// With no endpoint to pick: each of the cluster's endpoints and why balancing left it out.
    var leftOut: [RequestRecord.LeftOutEndpoint] = []
    var breaker: RequestRecord.BreakerUse?
    var faultDelay: TimeAmount?
    var firstTry: RequestRecord.Try?
    var laterTries: [RequestRecord.Try] = []

    /// Requests with longer ids are not recorded: nobody explains a 60 KiB id, and the ring stays small.
    static let maxRecordedIDBytes = 256
    static let maxRecordedPathCharacters = 512

    /// The path without its query (queries carry tokens), cut to `maxRecordedPathCharacters`.
    static func recordedPath(of target: String) -> Substring {
        // By bytes, not characters: `?` is ASCII, so its index is a character boundary.
        let path = target[..<(target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)]
        return path.utf8.count <= maxRecordedPathCharacters ? path : path.prefix(maxRecordedPathCharacters)
    }

    /// The cluster's circuit breaker admitted the request as the `inFlight`th
    /// of `limits.maxRequests` (nil: refused it, at the limit).
    mutating func enteredBreaker(_ inFlight: Int?, limits: CircuitBreakerConfig) {
        breaker = RequestRecord.BreakerUse(
            requests: inFlight ?? limits.maxRequests, maxRequests: limits.maxRequests,
            maxPendingRequests: limits.maxPendingRequests)
    }

    /// The request waited for a connection or stream as the `pending`th of
    /// `maxPendingRequests` (nil: refused, at the limit).
    mutating func waitedForConnection(_ pending: Int?) {
        guard var use = breaker else { return }
        use.pendingRequests = pending ?? use.maxPendingRequests
        breaker = use
    }

    mutating func startTry(on endpoint: String, at time: TimeAmount) {
        let attempt = RequestRecord.Try(endpoint: endpoint, startedAt: time)
        if firstTry == nil {
            firstTry = attempt
        } else {
            laterTries.append(attempt)
        }
    }

    mutating func attached(at time: TimeAmount) {
        updateCurrentTry { $0.attachedAt = time }
    }

    mutating func answered(at time: TimeAmount) {
        updateCurrentTry { $0.answeredAt = time }
    }

    mutating func retried(because cause: String) {
        updateCurrentTry { $0.retriedBecause = cause }
    }

    private mutating func updateCurrentTry(_ change: (inout RequestRecord.Try) -> Void) {
        if laterTries.isEmpty {
            if firstTry != nil { change(&firstTry!) }
        } else {
            change(&laterTries[laterTries.count - 1])
        }
    }
}
