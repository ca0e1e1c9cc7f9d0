import MeshConfig
import NIOCore
import NIOHTTP1

/// How one try of a request ended badly, as far as retrying is concerned.
enum TryFailure: Equatable, Sendable {
    case connectFailure
    /// The connection or stream failed before a response head arrived.
    case reset
    /// The endpoint refused the HTTP/2 stream unprocessed.
    case refused
    /// The try got no response head within `perTryTimeout`.
    case perTryTimeout
    /// A response head with this HTTP status.
    case status(Int)
    /// A trailers-only gRPC response with this status.
    case grpcStatus(GRPCStatusCode)

    /// Whether the try counts against its endpoint in outlier detection;
    /// nil for a refusal, which says nothing of the endpoint's health.
    var failsEndpoint: Bool? {
        switch self {
        case .connectFailure, .reset, .perTryTimeout: true
        case .refused: nil
        case .status(let code): code >= 500
        case .grpcStatus(let status): status.meansServerFailure
        }
    }

    /// The `cause` label of `swiftmesh_cluster_retries_total`.
    var cause: String {
        switch self {
        case .connectFailure: "connect_failure"
        case .reset: "reset"
        case .refused: "refused_stream"
        case .perTryTimeout: "per_try_timeout"
        case .status(let code): "status_\(code)"
        case .grpcStatus(let code): "grpc_status_\(code.rawValue)"
        }
    }
}

/// A route's `retries`, compiled for the data path: conditions as bits, durations as `TimeAmount`.
struct RetryRules: Sendable {
    /// Tells the endpoint which try of the request it serves (1 for the first).
    static let attemptHeader = "swiftmesh-attempt"

    private struct Conditions: OptionSet, Sendable {
        let rawValue: UInt16

        init(rawValue: UInt16) {
            self.rawValue = rawValue
        }

        init(_ condition: RetryPolicy.Condition) {
            self.init(rawValue: 1 << UInt16(RetryPolicy.Condition.allCases.firstIndex(of: condition) ?? 0))
        }

        static let connectFailure = Conditions(.connectFailure)
        static let reset = Conditions(.reset)
        static let refusedStream = Conditions(.refusedStream)
        static let gatewayError = Conditions(.gatewayError)
        static let serverError = Conditions(.serverError)
        static let retriableStatusCodes = Conditions(.retriableStatusCodes)
        /// Envoy's rule: 5xx and gateway-error also cover tries that got no response at all.
        static let anyNoResponse: Conditions = [.reset, .gatewayError, .serverError]
        static let httpStatuses: Conditions = [.gatewayError, .serverError, .retriableStatusCodes]
    }

    /// Retries after the first try.
    let attempts: Int
    private let conditions: Conditions
    private let statusCodes: [Int]
    /// The gRPC statuses retried when a trailers-only response carries them.
    private let grpcStatuses: [GRPCStatusCode]
    let perTryTimeout: TimeAmount?
    private let backoffBase: Int64
    private let backoffMax: Int64
    let budget: RetryBudgetConfig
    let bufferLimitBytes: Int

    init(_ policy: RetryPolicy) {
        attempts = policy.attempts
        conditions = policy.conditions.reduce(into: Conditions()) { $0.insert(Conditions($1)) }
        statusCodes = policy.retriableStatusCodes
        grpcStatuses = policy.conditions.compactMap { condition in
            switch condition {
            case .cancelled: .cancelled
            case .deadlineExceeded: .deadlineExceeded
            case .resourceExhausted: .resourceExhausted
            case .unavailable: .unavailable
            case .internal: .internalError
            default: nil
            }
        }
        perTryTimeout = policy.perTryTimeout.map { .nanoseconds($0.nanoseconds) }
        backoffBase = policy.backoff.base.nanoseconds
        backoffMax = policy.backoff.max.nanoseconds
        budget = policy.budget
        bufferLimitBytes = policy.bufferLimitBytes
    }

    /// Whether the conditions cover `failure` (limits, budget and replay aside).
    func covers(_ failure: TryFailure) -> Bool {
        switch failure {
        case .connectFailure:
            !conditions.isDisjoint(with: Conditions.anyNoResponse.union(.connectFailure))
        case .reset:
            !conditions.isDisjoint(with: .anyNoResponse)
        case .refused:
            !conditions.isDisjoint(with: Conditions.anyNoResponse.union(.refusedStream))
        case .perTryTimeout:
            // Counts as a 504, as Envoy treats it; gRPC callers can say deadline-exceeded.
            !conditions.isDisjoint(with: .anyNoResponse) || grpcStatuses.contains(.deadlineExceeded)
        case .status(let code):
            conditions.contains(.serverError) && (500...599).contains(code)
                || conditions.contains(.gatewayError) && (502...504).contains(code)
                || conditions.contains(.retriableStatusCodes) && statusCodes.contains(code)
        case .grpcStatus(let status):
            grpcStatuses.contains(status)
        }
    }

    /// The failure a response head reports, when the conditions retry it: a
    /// status they name, or for gRPC a trailers-only response (its one header
    /// block carries `grpc-status`) with a status they name.
    func retriableFailure(response head: HTTPResponseHead, isGRPC: Bool) -> TryFailure? {
        let code = Int(head.status.code)
        if code >= 400, !conditions.isDisjoint(with: .httpStatuses), covers(.status(code)) {
            return .status(code)
        }
        return isGRPC ? retriableFailure(grpcFields: head.headers) : nil
    }

    /// The failure a gRPC header block (a trailers-only response, or the
    /// trailers of one without messages) reports in `grpc-status`, when the
    /// conditions retry it.
    func retriableFailure(grpcFields fields: HTTPHeaders) -> TryFailure? {
        guard !grpcStatuses.isEmpty, let value = fields.first(name: "grpc-status"),
              let status = Int(value).flatMap(GRPCStatusCode.init(rawValue:)), grpcStatuses.contains(status) else {
            return nil
        }
        return .grpcStatus(status)
    }

    /// The wait before retry `retry` (1 for the first): uniform in zero to
    /// min(max, base × 2^(retry-1)).
    func backoff(retry: Int, random: inout FastRandom) -> TimeAmount {
        let doublings = min(max(retry - 1, 0), 30)
        let scaled = backoffBase.multipliedReportingOverflow(by: 1 << doublings)
        let ceiling = scaled.overflow ? backoffMax : min(backoffMax, scaled.partialValue)
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64(random.below(Int(ceiling) + 1)))
    }
}
