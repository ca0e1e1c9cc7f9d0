import Logging
import MeshUpstream
import NIOCore
import NIOHTTP1

/// One request's life on the proxy, as the driver of its `ExchangeMachine`:
/// it feeds the machine the events of the client's side, of the try's
/// connection or stream and of its timers, and performs the actions the
/// machine returns. Routing and admission come first
/// (`ProxyExchange+Routing.swift`); each try is an `UpstreamTry`; what
/// happened is noted in one `RequestInfo`, which the metrics, the access log,
/// the span and `explain` read when the request ends. Everything runs on the
/// event loop of the client's connection; the upstream pools are that loop's
/// own, so no call here crosses threads.
final class ProxyExchange {
    let downstream: any ExchangeDownstream
    let worker: LoopWorker
    var machine: ExchangeMachine
    var info: RequestInfo
    /// The request head as it goes to endpoints, built when the first try starts.
    var upstreamHead: HTTPRequestHead?
    var cluster: LoopCluster? {
        get { info.cluster }
        set { info.cluster = newValue }
    }
    /// The try in progress; nil before the first, between tries and once over.
    private var currentTry: UpstreamTry?
    /// Endpoints of failed tries, which a retry avoids while others remain.
    private var failedEndpoints: [EndpointState] = []
    var deadlineTimer: Scheduled<Void>?
    /// The route's fault injection holding the request before it goes upstream.
    var faultDelayTimer: Scheduled<Void>?
    private var perTryTimer: Scheduled<Void>?
    private var backoffTimer: Scheduled<Void>?
    /// Counted in the stats and records: nothing more happens.
    private var isDone = false

    /// An exchange for a request whose head just arrived; the caller keeps
    /// it before calling `start`, which may finish it at once (a local answer).
    convenience init(for head: HTTPRequestHead, hasBody: Bool, downstream: any ExchangeDownstream, worker: LoopWorker) {
        let requestID = head.headers.first(name: HeaderHygiene.requestIDHeader)
            ?? RequestID.generate(using: &worker.random)
        let isGRPC = head.headers.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
        self.init(downstream: downstream, worker: worker, requestID: requestID, isGRPC: isGRPC, hasBody: hasBody)
    }

    init(downstream: any ExchangeDownstream, worker: LoopWorker, requestID: String, isGRPC: Bool, hasBody: Bool) {
        self.downstream = downstream
        self.worker = worker
        machine = ExchangeMachine(isGRPC: isGRPC, requestHasBody: hasBody)
        info = RequestInfo(requestID: requestID, isGRPC: isGRPC, start: .now())
        worker.stats.requestStarted(listener: downstream.connection.listenerLabel)
    }

    var requestID: String { info.requestID }
    var isGRPC: Bool { machine.isGRPC }

    // MARK: Tries

    /// Sends the request to `endpoint`: a new try asks its pool for a connection or stream.
    func startTry(on endpoint: EndpointState) {
        let number = machine.startTry()
        endpoint.inFlight += 1
        info.startTry(number, on: endpoint, at: .now())
        let attempt = UpstreamTry(number: number, endpoint: endpoint, exchange: self)
        currentTry = attempt
        if let limit = machine.retryRules?.perTryTimeout {
            perTryTimer?.cancel()
            perTryTimer = worker.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
                perform(machine.perTryTimedOut(number, now: .now(), admission: self))
            }
        }
        // Last: the pool may answer at once (a free connection, or a refusal).
        endpoint.pool.acquire(for: attempt)
    }

    /// The try in progress is over: it leaves its pool's queue or gives up its
    /// upstream, and its endpoint's count. A failed one's endpoint is avoided by retries.
    private func endTry(failed: Bool) {
        perTryTimer?.cancel()
        perTryTimer = nil
        guard let ended = currentTry else { return }
        currentTry = nil
        ended.end()
        ended.endpoint.inFlight -= 1
        if failed {
            failedEndpoints.append(ended.endpoint)
        }
    }

    /// The next try after a backoff: to another endpoint when the cluster has one.
    private func backoffEnded() {
        backoffTimer = nil
        guard machine.backoffEnded(), let cluster, let head = upstreamHead else { return }
        guard let endpoint = cluster.pickRetryEndpoint(headers: head.headers, random: &worker.random, avoiding: failedEndpoints) else {
            info.leftOut = cluster.leftOutEndpoints
            perform(machine.fail(.noEndpoints))
            return
        }
        startTry(on: endpoint)
    }

    // MARK: Events of the try (from `UpstreamTry`)

    func tryQueued(pendingRequests: Int) {
        info.waitedForConnection(pendingRequests)
    }

    func tryConnected(_ attempt: UpstreamTry) {
        guard attempt === currentTry else { return }
        perform(machine.upstreamAttached())
    }

    func tryFailed(_ attempt: UpstreamTry, _ failure: UpstreamFailure) {
        guard attempt === currentTry else { return }
        if failure == .pendingOverflow {
            info.waitedForConnection(nil)
        }
        perform(machine.upstreamFailed(failure, now: .now(), admission: self))
    }

    func tryRefused(_ attempt: UpstreamTry) {
        guard attempt === currentTry else { return }
        info.flags.insert(.refused)
        perform(machine.upstreamRefused(now: .now(), admission: self))
    }

    func tryReceived(_ attempt: UpstreamTry, _ part: HTTPClientResponsePart) {
        guard attempt === currentTry else { return }
        switch part {
        case .head(let head):
            info.answered(at: .now())
            perform(machine.responseHead(head, now: .now(), admission: self))
        case .body(let body):
            perform(machine.responseBody(body))
        case .end(let trailers):
            perform(machine.responseEnd(trailers, now: .now(), admission: self))
        }
    }

    // MARK: Events of the client's side (from `ExchangeDownstream`)

    func downstreamReceived(_ part: ExchangeMachine.RequestPart) {
        switch part {
        case .body(let body):
            info.bytesReceived += body.readableBytes
            perform(machine.requestReceived(part))
        case .end(let trailers?):
            perform(machine.requestReceived(.end(HeaderHygiene.forwardedTrailers(trailers, fromClient: true))))
        case .end(nil):
            perform(machine.requestReceived(part))
        }
    }

    /// Whether the client's side should stop reading: nothing can take the bytes yet.
    var shouldPauseDownstreamReads: Bool {
        if machine.waitingBodyIsFull {
            return true
        }
        guard case .proxying = machine.phase, let upstream = currentTry?.upstream else { return false }
        return !upstream.isWritable
    }

    var downstreamIsWritable: Bool { downstream.isWritable }

    func flushUpstream() {
        currentTry?.upstream?.flush()
    }

    func flushDownstream() {
        downstream.flush()
    }

    func upstreamBecameWritable() {
        downstream.resumeReads()
    }

    func downstreamBecameWritable() {
        currentTry?.upstream?.resumeReading()
    }

    /// No bytes went either way for the listener's `streamIdleTimeout`: 408
    /// while the client was still sending, 504 while the endpoint was to
    /// answer, the response cut off once it started.
    func streamIdleTimedOut() {
        perform(machine.streamIdle())
    }

    /// The client went away (connection closed, stream reset): nothing to answer.
    func downstreamClosed() {
        perform(machine.downstreamClosed())
    }

    /// The rest of the request could not be parsed, or routing refused it.
    func fail(_ error: ProxyError) {
        perform(machine.fail(error))
    }

    /// The route's timeout or the gRPC client's deadline passed.
    func deadlinePassed() {
        deadlineTimer = nil
        // A cancelled timer may still run when it was due in the same loop turn.
        guard machine.isActive else { return }
        worker.stats.timedOut(cluster: cluster?.statsLabel ?? 0, kind: "route")
        perform(machine.deadlinePassed())
    }

    // MARK: Actions

    func perform(_ action: ExchangeMachine.Action) {
        switch action {
        case .none:
            break
        case .sendRequest(let attempt, let buffered):
            sendRequest(attempt: attempt, buffered: buffered)
        case .forwardRequestPart(let part):
            guard let upstream = currentTry?.upstream else { return }
            write(part, to: upstream)
            if case .end = part {
                upstream.flush()
            }
        case .giveBack:
            currentTry?.giveBackConnection()
        case .writeResponseHead(let head):
            forwardHead(head)
        case .writeResponseBody(let body, let heldHead):
            if let heldHead {
                forwardHead(heldHead)
            }
            info.bytesSent += body.readableBytes
            downstream.writeBody(body)
        case .endResponse(let trailers, let heldHead, let report):
            if let heldHead {
                forwardHead(heldHead)
            }
            reportTry(report)
            endTry(failed: false)
            if isGRPC, let trailers {
                info.noteGRPCStatus(trailers)
            }
            downstream.writeEnd(trailers: trailers.map { HeaderHygiene.forwardedTrailers($0, fromClient: false) })
            finish(error: nil)
        case .retry(let failure, let report, let backoff):
            reportTry(report)
            retry(after: failure, backoff: backoff)
        case .resend:
            guard let refused = currentTry else { return }
            let again = UpstreamTry(number: refused.number, endpoint: refused.endpoint, exchange: self)
            refused.end()
            currentTry = again
            again.endpoint.pool.acquire(for: again)
        case .fail(let error, let report):
            reportTry(report)
            if error == .perTryTimeout {
                worker.stats.timedOut(cluster: cluster?.statsLabel ?? 0, kind: "per_try")
            }
            endTry(failed: false)
            answer(error)
            finish(error: error)
        case .abandon:
            info.flags.insert(.clientGone)
            endTry(failed: false)
            finish(error: nil)
        }
    }

    /// The try's connection or stream is ready: the head (with the try's
    /// number and the deadline left), then what waited for it.
    private func sendRequest(attempt: Int, buffered: CircularBuffer<ExchangeMachine.RequestPart>) {
        guard let upstream = currentTry?.upstream, var head = upstreamHead else { return }
        info.attached(at: .now())
        if attempt > 1 {
            head.headers.replaceOrAdd(name: RetryRules.attemptHeader, value: String(attempt))
        }
        if isGRPC, let deadline = machine.deadline {
            // The endpoint learns how much of the deadline is left now, after
            // any wait for a connection (and on every resend).
            head.headers.replaceOrAdd(name: GRPCTimeout.header, value: GRPCTimeout.format(deadline - .now()))
        }
        upstream.writeHead(head, hasBody: machine.requestHasBody)
        for part in buffered {
            write(part, to: upstream)
        }
        upstream.flush()
        downstream.resumeReads()
    }

    private func write(_ part: ExchangeMachine.RequestPart, to upstream: any ExchangeUpstream) {
        switch part {
        case .body(let body): upstream.writeBody(body)
        case .end(let trailers): upstream.writeEnd(trailers: trailers)
        }
    }

    /// Sends the response head to the client: from now on the request is
    /// committed to this try.
    private func forwardHead(_ head: HTTPResponseHead) {
        perTryTimer?.cancel()
        perTryTimer = nil
        let headers = HeaderHygiene.downstreamResponseFields(head.headers, requestID: requestID)
        if isGRPC {
            info.noteGRPCStatus(head.headers)
        }
        if head.status.code >= 400 && head.status.code < 500, let reason = head.headers.first(name: LocalResponse.proxyErrorHeader) {
            // Another proxy of the mesh refused the call (the callee's sidecar denied it): a 4xx that fails it.
            info.refusedOnTheWay = ProxyError.reasonFailsTheCall(reason)
        }
        info.status = head.status
        downstream.writeResponseHead(status: head.status, headers: headers)
    }

    /// Ends the failed try and starts the next after its backoff. The next
    /// try always starts on a later loop turn, so nothing of the failed
    /// try's call stack can reach it.
    private func retry(after failure: TryFailure, backoff: TimeAmount) {
        info.retried(because: failure)
        if failure == .perTryTimeout {
            worker.stats.timedOut(cluster: cluster?.statsLabel ?? 0, kind: "per_try")
        }
        endTry(failed: true)
        worker.stats.requestRetried(cluster: cluster?.statsLabel ?? 0, cause: failure.cause)
        backoffTimer?.cancel()
        backoffTimer = worker.eventLoop.assumeIsolated().scheduleTask(in: backoff) { [self] in
            backoffEnded()
        }
    }

    /// Tells the cluster's outlier detection how the try in progress went.
    private func reportTry(_ failed: Bool?) {
        if let failed, let endpoint = currentTry?.endpoint {
            cluster?.report(endpoint, failed: failed)
        }
    }

    /// The proxy's own answer for `error` when nothing went to the client
    /// yet; otherwise the response ends as well as the protocol allows.
    private func answer(_ error: ProxyError) {
        info.flags.formUnion(RequestFlags(error))
        if info.status == nil {
            info.status = downstream.writeLocalResponse(
                for: error, isGRPC: isGRPC, requestID: requestID, explainHint: worker.explainHint)
        } else if isGRPC && downstream.connection.isHTTP2 {
            // Headers are out: trailers still give a gRPC caller a status.
            downstream.writeEnd(
                trailers: LocalResponse.grpcTrailers(for: error, requestID: requestID, explainHint: worker.explainHint))
        } else {
            downstream.abortResponse()
        }
    }

    /// The request is over: timers stop, slots go back, and it is counted and recorded.
    private func finish(error: ProxyError?) {
        guard !isDone else { return }
        isDone = true
        // One by one: an array of the four would be an allocation per request.
        deadlineTimer?.cancel()
        faultDelayTimer?.cancel()
        perTryTimer?.cancel()
        backoffTimer?.cancel()
        deadlineTimer = nil
        faultDelayTimer = nil
        perTryTimer = nil
        backoffTimer = nil
        endTry(failed: false)
        releaseHeld()
        let elapsed = NIODeadline.now() - info.start
        if isGRPC, info.grpcStatus == FinishedRequest.noGRPCStatus, let error {
            info.grpcStatus = UInt8(error.grpcStatus.rawValue)
        }
        let connection = downstream.connection
        let serviceLabel = cluster?.serviceLabel ?? info.listenerService.map(worker.stats.label) ?? 0
        worker.stats.requestFinished(
            info.finishedRequest(connection: connection, serviceLabel: serviceLabel, elapsed: elapsed, error: error))
        if let draft = info.accessLogDraft, let accessLog = worker.accessLog {
            accessLog.record(info.accessLogEntry(draft, connection: connection, elapsed: elapsed, error: error))
        }
        if let traced = info.traced, traced.context.sampled, let tracing = worker.tracing {
            tracing.record(info.span(traced, connection: connection, elapsed: elapsed, error: error))
        }
        if requestID.utf8.count <= RequestInfo.maxRecordedIDBytes {
            worker.recentRequests.add(info.record(connection: connection, elapsed: elapsed, error: error))
        }
        downstream.exchangeFinished(self)
    }
}
