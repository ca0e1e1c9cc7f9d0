/// Faults a route injects on purpose, so that callers' timeouts, retries and
/// fallbacks can be tested against the real thing. Each applies to a share
/// of the route's requests, drawn independently per request.
public struct FaultConfig: Sendable, Equatable {
    public var delay: FaultDelay?
    public var abort: FaultAbort?

    public init(delay: FaultDelay? = nil, abort: FaultAbort? = nil) {
        self.delay = delay
        self.abort = abort
    }
}

/// A share of requests, in millionths (`percent: 12.5` is 125,000), so the
/// data path draws an integer.
public struct FaultShare: Sendable, Equatable {
    public static let whole = 1_000_000
    public var millionths: Int

    public init(percent: Double) {
        millionths = Int((percent * 10_000).rounded())
    }

    public var percent: Double { Double(millionths) / 10_000 }
}

/// Holds requests for `fixed` before they go on to their cluster.
public struct FaultDelay: Sendable, Equatable {
    public var fixed: MeshDuration
    public var share: FaultShare

    public init(fixed: MeshDuration, share: FaultShare) {
        self.fixed = fixed
        self.share = share
    }
}

/// Answers requests at once with a chosen status, without reaching the cluster.
public struct FaultAbort: Sendable, Equatable {
    public enum Answer: Sendable, Equatable {
        /// An HTTP status, 200-599 (gRPC callers get the matching gRPC status).
        case httpStatus(Int)
        /// A gRPC status code, 1-16 (other callers get the matching HTTP status).
        case grpcStatus(Int)
    }

    public var answer: Answer
    public var share: FaultShare

    public init(answer: Answer, share: FaultShare) {
        self.answer = answer
        self.share = share
    }
}
