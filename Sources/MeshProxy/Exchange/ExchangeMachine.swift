import MeshUpstream
import NIOCore
import NIOHTTP1

/// The decisions of one request's exchange, apart from its I/O: which try
/// is out, what of the request waits for it, whether a failed try is tried
/// again, when a response head may go to the client, and how the request
/// ends. A value: events go in as method calls, each returns the one
/// `Action` the driver (`ProxyExchange`) performs on the event loop. Time is
/// an argument, so tests drive it with a clock of their own.
///
/// Routing and authorization come before it (`ProxyExchange+Routing.swift`);
/// the request is `routing` until the cluster admits it and its first try
/// starts. What it holds of the cluster (its slot among the requests in
/// flight, the client's share, a retry slot) it knows in `held`, and gives
/// back when it ends.
struct ExchangeMachine {
    /// A request part after its head, as the client sent it.
    enum RequestPart: Equatable {
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    /// Where the response of the try in progress stands.
    enum Response: Equatable {
        /// Nothing yet.
        case awaited
        /// A head came while the try may still be retried: it goes to the
        /// client with the first body bytes or the end, so a try that fails
        /// between its head and its body (an instance killed mid-answer) is
        /// still retried.
        case held(HTTPResponseHead)
        /// The head went to the client: the request is committed to this try.
        case forwarded
    }

    enum Phase: Equatable {
        /// Head received: routing, authorization, a fault's delay.
        case routing
        /// A try asked its endpoint's pool for a connection or stream.
        case awaitingEndpoint
        /// The try's connection or stream took the request; parts flow both ways.
        case proxying(Response)
        /// A try failed; the next starts when its backoff ends.
        case backingOff
        /// Answered, failed or abandoned: every later event is ignored.
        case finished
    }

    /// What the driver does after an event.
    enum Action: Equatable {
        case none
        /// The try's connection or stream is ready: send the request head
        /// (`attempt` in `swiftmesh-attempt`) and the parts that waited for it.
        case sendRequest(attempt: Int, buffered: CircularBuffer<RequestPart>)
        /// Send a part to the endpoint (and flush once it is the end).
        case forwardRequestPart(RequestPart)
        /// A connection or stream came for a try that is over: give it back unused.
        case giveBack
        case writeResponseHead(HTTPResponseHead)
        /// Write response body, after the head held back for a retry decision, if any.
        case writeResponseBody(ByteBuffer, heldHead: HTTPResponseHead?)
        /// End the response (after the held head, if any); the request is over.
        /// `report` tells outlier detection how the try went (nil: it does not watch).
        case endResponse(trailers: HTTPHeaders?, heldHead: HTTPResponseHead?, report: Bool?)
        /// End the try (reset its upstream, or leave its pool's queue), tell
        /// outlier detection `report` (nil: nothing to tell), and start the
        /// next try after `backoff`.
        case retry(TryFailure, report: Bool?, backoff: TimeAmount)
        /// The endpoint refused the try unprocessed and the request is whole
        /// in hand: ask the same endpoint's pool again, as the same try.
        case resend
        /// End the try and answer the client with `error` (or end the
        /// response as well as the protocol allows once it started).
        case fail(ProxyError, report: Bool?)
        /// The client is gone: end the try and answer nothing.
        case abandon
    }

    /// What a request holds of its cluster until it ends.
    struct HeldSlots: OptionSet, Equatable {
        let rawValue: UInt8
        /// One of the circuit breaker's `maxRequests`.
        static let request = HeldSlots(rawValue: 1 << 0)
        /// One of the client connection's `maxShareOfClusterRequests`.
        static let clusterShare = HeldSlots(rawValue: 1 << 1)
        /// One of the circuit breaker's `maxRetries` (taken at the first retry).
        static let retry = HeldSlots(rawValue: 1 << 2)
    }

    /// A connection that is going away refuses at most its in-flight streams;
    /// more refusals in a row mean the endpoint refuses everything.
    static let maxRefusals = 3
    /// How much request body may wait for a connection before the client is
    /// paused. Pausing costs two epoll_ctl calls, so bodiless requests never pause.
    static let maxWaitingBodyBytes = 64 * 1024

    let isGRPC: Bool
    /// The request has a body (its head did not end it).
    let requestHasBody: Bool
    private(set) var phase = Phase.routing
    /// Tries started so far (1 while the first is out).
    private(set) var tries = 0
    /// The route timeout or the gRPC client's deadline, whichever is sooner.
    private(set) var deadline: NIODeadline?
    /// The client sent the request up to its end.
    private(set) var requestEnded = false
    /// A response head went to the client: errors can no longer become answers.
    private(set) var responseStarted = false
    /// Present when the route retries.
    private var retry: RetryState?
    var retryRules: RetryRules? { retry?.rules }
    /// Outlier detection watches the cluster: the machine reports how tries went.
    private var detectsOutliers = false
    /// Parts that arrived while no connection or stream had the request.
    private var waiting = CircularBuffer<RequestPart>()
    private var waitingBodyBytes = 0
    private var refusals = 0
    /// What the request holds of its cluster; `releaseHeld` gives it back.
    private(set) var held = HeldSlots()
    /// The forwarded head already says the endpoint failed (5xx, or a
    /// trailers-only gRPC status such as UNAVAILABLE).
    private var responseFailsEndpoint = false

    init(isGRPC: Bool, requestHasBody: Bool) {
        self.isGRPC = isGRPC
        self.requestHasBody = requestHasBody
    }

    /// Not yet finished.
    var isActive: Bool { phase != .finished }

    /// The client should stop sending: no try takes the bytes and enough of them wait.
    var waitingBodyIsFull: Bool {
        switch phase {
        case .routing, .awaitingEndpoint, .backingOff: waitingBodyBytes >= Self.maxWaitingBodyBytes
        case .proxying, .finished: false
        }
    }

    // MARK: Before the first try

    /// The request was routed: its deadline and its route's retry rules (nil: no retries).
    mutating func routed(deadline: NIODeadline?, retry: RetryRules?) {
        self.deadline = deadline
        self.retry = retry.map(RetryState.init)
        for part in waiting {
            self.retry?.keep(part)
        }
    }

    /// The cluster admits the request before its first try: the client's
    /// share of the cluster (`maxShareOfClusterRequests`), then a slot among
    /// its requests in flight (`maxRequests`). `.none` when admitted (the
    /// driver picks the endpoint next); otherwise the refusal.
    /// `detectsOutliers`: the cluster (as it is now, after any reload during
    /// a fault's delay) wants to hear how each try went.
    mutating func admit(_ admission: some ClusterAdmission, detectsOutliers: Bool) -> Action {
        guard phase == .routing else { return .none }
        self.detectsOutliers = detectsOutliers
        switch admission.takeClusterShare() {
        case .notCounted:
            break
        case .taken:
            held.insert(.clusterShare)
        case .refused:
            return finish(failing: .clusterShare, report: nil)
        }
        guard admission.startRequest() else {
            return finish(failing: .overflow(.maxRequests), report: nil)
        }
        held.insert(.request)
        return .none
    }

    /// The request is over (its end was performed): what it held of the
    /// cluster, for the driver to give back, once.
    mutating func releaseHeld() -> HeldSlots {
        defer { held = [] }
        return held
    }

    /// A try starts (the first, or one after a backoff): the driver picked its
    /// endpoint and asks its pool next. Returns the try's number.
    mutating func startTry() -> Int {
        precondition(phase == .routing || phase == .backingOff, "a try starts only when none is out")
        tries += 1
        phase = .awaitingEndpoint
        return tries
    }

    /// A backoff ended: true when the driver should pick the next try's endpoint.
    func backoffEnded() -> Bool {
        phase == .backingOff
    }

    // MARK: Request direction

    /// A request part from the client.
    mutating func requestReceived(_ part: RequestPart) -> Action {
        if case .end = part {
            requestEnded = true
        }
        retry?.keep(part)
        switch phase {
        case .routing, .awaitingEndpoint, .backingOff:
            if case .body(let body) = part {
                waitingBodyBytes += body.readableBytes
            }
            waiting.append(part)
            return .none
        case .proxying:
            return .forwardRequestPart(part)
        case .finished:
            return .none
        }
    }

    /// The try's pool has a connection or stream for it.
    mutating func upstreamAttached() -> Action {
        guard phase == .awaitingEndpoint else { return .giveBack }
        phase = .proxying(.awaited)
        let buffered = waiting
        waiting.removeAll()
        waitingBodyBytes = 0
        return .sendRequest(attempt: tries, buffered: buffered)
    }

    // MARK: Response direction

    mutating func responseHead(
        _ head: HTTPResponseHead, now: NIODeadline, admission: some ClusterAdmission
    ) -> Action {
        guard phase == .proxying(.awaited) else { return .none }
        if let failure = retryRules?.retriableFailure(response: head, isGRPC: isGRPC),
           let backoff = mayRetry(after: failure, now: now, admission: admission) {
            // Nothing of this response reaches the client; the endpoint's stream is reset.
            return beginRetry(after: failure, report: failure.failsEndpoint, backoff: backoff)
        }
        if let retry, retry.holdsHead(tries: tries) {
            // The per-try timeout keeps running: a head followed by silence is a hung try.
            phase = .proxying(.held(head))
            return .none
        }
        forward(head)
        return .writeResponseHead(head)
    }

    mutating func responseBody(_ body: ByteBuffer) -> Action {
        switch phase {
        case .proxying(.held(let head)):
            forward(head)
            return .writeResponseBody(body, heldHead: head)
        case .proxying(.forwarded):
            return .writeResponseBody(body, heldHead: nil)
        default:
            return .none
        }
    }

    mutating func responseEnd(_ trailers: HTTPHeaders?, now: NIODeadline, admission: some ClusterAdmission) -> Action {
        var heldHead: HTTPResponseHead?
        switch phase {
        case .proxying(.held(let head)):
            // No body: a gRPC failure in the trailers is as retriable as a trailers-only one.
            if isGRPC, let trailers, let failure = retryRules?.retriableFailure(grpcFields: trailers),
               let backoff = mayRetry(after: failure, now: now, admission: admission) {
                return beginRetry(after: failure, report: failure.failsEndpoint, backoff: backoff)
            }
            forward(head)
            heldHead = head
        case .proxying(.forwarded):
            break
        case .proxying(.awaited):
            // An end without a head is no response.
            return upstreamFailed(.reset, now: now, admission: admission)
        default:
            return .none
        }
        phase = .finished
        let report: Bool? = detectsOutliers
            ? responseFailsEndpoint || isGRPC && trailers.map(Self.grpcStatusFailsEndpoint) ?? false
            : nil
        return .endResponse(trailers: trailers, heldHead: heldHead, report: report)
    }

    /// The head goes to the client: from now on the request is committed to this try.
    private mutating func forward(_ head: HTTPResponseHead) {
        phase = .proxying(.forwarded)
        responseStarted = true
        retry?.stopReplaying()
        if detectsOutliers {
            responseFailsEndpoint = head.status.code >= 500 || isGRPC && Self.grpcStatusFailsEndpoint(head.headers)
        }
    }

    // MARK: Failures of the try

    /// The endpoint refused the stream without processing it (HTTP/2
    /// REFUSED_STREAM, or a stream above a GOAWAY's last stream ID). A route
    /// retrying on `refused-stream` (or `reset`, `5xx`, `gateway-error`)
    /// retries. Otherwise a request without a body is whole in hand, so it
    /// goes again to the same endpoint, which the client never notices; one
    /// with a body fails like a reset, as its bytes are gone.
    mutating func upstreamRefused(now: NIODeadline, admission: some ClusterAdmission) -> Action {
        guard phase == .awaitingEndpoint || isProxyingTry else { return .none }
        if let backoff = mayRetry(after: .refused, now: now, admission: admission) {
            return beginRetry(after: .refused, report: nil, backoff: backoff)
        }
        guard isProxyingTry, !responseStarted, !requestHasBody, refusals < Self.maxRefusals else {
            return finish(failing: .upstreamReset, report: nil)
        }
        refusals += 1
        phase = .awaitingEndpoint
        if requestEnded {
            waiting.append(.end(nil))
        }
        return .resend
    }

    /// The try's connection or stream failed or closed before the response
    /// ended, or no connection could be had.
    mutating func upstreamFailed(_ failure: UpstreamFailure, now: NIODeadline, admission: some ClusterAdmission) -> Action {
        guard phase == .awaitingEndpoint || isProxyingTry else { return .none }
        let tryFailure: TryFailure? = switch failure {
        case .connectFailure: .connectFailure
        case .reset: .reset
        case .pendingOverflow: nil
        }
        let report: Bool? = tryFailure != nil ? true : nil
        if let tryFailure, let backoff = mayRetry(after: tryFailure, now: now, admission: admission) {
            return beginRetry(after: tryFailure, report: report, backoff: backoff)
        }
        return finish(failing: failure.proxyError, report: report)
    }

    /// The per-try timer of try `number` fired: the try got no response head in time.
    mutating func perTryTimedOut(_ number: Int, now: NIODeadline, admission: some ClusterAdmission) -> Action {
        // A cancelled timer may still run when it was due in the same loop turn.
        guard number == tries, !responseStarted, phase == .awaitingEndpoint || isProxyingTry else { return .none }
        if let backoff = mayRetry(after: .perTryTimeout, now: now, admission: admission) {
            return beginRetry(after: .perTryTimeout, report: true, backoff: backoff)
        }
        return finish(failing: .perTryTimeout, report: true)
    }

    // MARK: Ends of the request

    /// The request's deadline passed.
    mutating func deadlinePassed() -> Action {
        guard isActive else { return .none }
        // A try that had not answered by the deadline is a slow endpoint (a
        // long stream that did answer, or a request still queued in the
        // proxy's own pool, is not).
        return finish(failing: .timeout, report: isProxyingTry && !responseStarted ? true : nil)
    }

    /// No bytes either way for the listener's `streamIdleTimeout`.
    mutating func streamIdle() -> Action {
        guard isActive else { return .none }
        // An endpoint that took the whole request and said nothing is a slow one.
        let slowEndpoint = isProxyingTry && !responseStarted && requestEnded
        return finish(failing: .streamIdleTimeout(clientSending: !requestEnded), report: slowEndpoint ? true : nil)
    }

    /// The request ends with the proxy's error: routing refused it, a fault
    /// aborted it, no endpoint was left, or the rest of it did not parse.
    mutating func fail(_ error: ProxyError) -> Action {
        guard isActive else { return .none }
        return finish(failing: error, report: nil)
    }

    /// The client went away (connection closed, stream reset).
    mutating func downstreamClosed() -> Action {
        guard isActive else { return .none }
        phase = .finished
        return .abandon
    }

    // MARK: Retries

    private var isProxyingTry: Bool {
        if case .proxying = phase { true } else { false }
    }

    /// Whether the failed try may be retried: nothing went to the client,
    /// the request's `RetryState` allows it, and the cluster admits one more
    /// (its circuit breaker's `maxRetries` and retry budget). Returns the backoff.
    private mutating func mayRetry(after failure: TryFailure, now: NIODeadline, admission: some ClusterAdmission) -> TimeAmount? {
        guard let retry, !responseStarted,
              retry.allowsRetry(after: failure, tries: tries, deadline: deadline, now: now),
              let backoff = admission.admitRetry(
                  retry.rules, retry: tries, holdingRetrySlot: held.contains(.retry), now: now) else { return nil }
        held.insert(.retry)
        return backoff
    }

    private mutating func beginRetry(after failure: TryFailure, report: Bool?, backoff: TimeAmount) -> Action {
        phase = .backingOff
        waiting = retry?.replay ?? []
        waitingBodyBytes = retry?.replayBodyBytes ?? 0
        return .retry(failure, report: report, backoff: backoff)
    }

    private mutating func finish(failing error: ProxyError, report: Bool?) -> Action {
        phase = .finished
        waiting.removeAll()
        retry = nil
        return .fail(error, report: report)
    }

    /// Whether a header block's `grpc-status` is one that counts against the endpoint.
    static func grpcStatusFailsEndpoint(_ fields: HTTPHeaders) -> Bool {
        guard let value = fields.first(name: "grpc-status"), let code = Int(value) else { return false }
        return GRPCStatusCode(rawValue: code)?.meansServerFailure ?? false
    }
}
