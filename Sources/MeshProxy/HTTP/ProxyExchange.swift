import Logging
import NIOCore
import NIOHTTP1

/// One request's life on the proxy: route it, pick a cluster and an endpoint,
/// get an upstream connection or stream, then carry the request up and the
/// response down, part by part, until either side ends it. Everything runs on
/// the event loop of the downstream connection; the upstream pools are that
/// loop's own, so no call here crosses threads.
final class ProxyExchange {
    private enum State {
        /// Routed; waiting for a connection or stream from the endpoint's pool.
        case waitingForUpstream
        /// Upstream attached; parts flow both ways.
        case proxying
        /// Writing the last response part. Ending an HTTP/2 stream closes it
        /// synchronously, and that close must not finish the exchange twice.
        case finishing
        /// Response complete, failed or abandoned; counted in the stats.
        case finished
    }

    private let downstream: any ExchangeDownstream
    private let worker: LoopWorker
    let requestID: String
    let isGRPC: Bool
    private let startTime: NIODeadline
    private var state: State = .waitingForUpstream
    private var upstream: (any ExchangeUpstream)?
    private var upstreamHead: HTTPRequestHead?
    /// Request parts that arrived before the upstream was attached. Bounded:
    /// downstream reads pause once `pendingBodyBytes` passes `maxPendingBodyBytes`.
    private var pending = CircularBuffer<HTTPClientRequestPart>()
    private var pendingBodyBytes = 0
    /// How much request body may wait for a connection before the client is
    /// paused. Pausing costs two epoll_ctl calls, so bodiless requests never pause.
    static let maxPendingBodyBytes = 64 * 1024
    private var cluster: LoopCluster?
    /// The service the listener's routes lead to: what a request answered
    /// before a cluster was picked (denied, no route) is counted for.
    private var listenerService: String?
    /// An endpoint's connection or stream took the request: the instance
    /// counts it too, so an outbound request that never got this far is one
    /// only this proxy saw (`FinishedRequest.reachedEndpoint`).
    private var reachedEndpoint = false
    /// The response is a refusal another proxy made (`swiftmesh-proxy-error`
    /// on a 4xx, such as the callee's sidecar denying the call).
    private var refusedOnTheWay = false
    /// The endpoint of the try in progress; nil between tries.
    private var endpoint: EndpointState?
    /// The cluster's circuit breaker counts this request in flight.
    private var holdsRequestSlot = false
    /// The client's connection counts this request in its share of the
    /// cluster with this label (`maxShareOfClusterRequests`).
    private var heldClusterShare: Int?
    /// The cluster's circuit breaker counts this request as pending: waiting
    /// for a connection or a stream.
    private var isPending = false
    private var timeout: Scheduled<Void>?
    /// When the route timeout or the gRPC client's deadline, whichever is sooner, ends the request.
    private var deadline: NIODeadline?
    /// The route's fault injection holding the request before it goes upstream.
    private var faultDelay: Scheduled<Void>?
    /// Set once a response head went downstream; after that errors cannot become local responses.
    private var responseStatus: HTTPResponseStatus?
    /// The request has a body (its head did not end it), so an HTTP/1.1
    /// upstream gets it chunked unless it has a Content-Length.
    private(set) var requestHasBody = true
    /// The downstream request was received up to its end.
    private var requestEnded = false
    /// Times an endpoint refused the request unprocessed and it was sent again.
    private var refusals = 0
    /// A connection that is going away refuses at most its in-flight streams;
    /// more refusals in a row mean the endpoint refuses everything.
    static let maxRefusals = 3

    // MARK: Retry state (routes with `retries` only)

    private var retryRules: RetryRules?
    /// Tries started so far (1 while the first is out).
    private var tries = 0
    /// Every request part received so far, to send again on a retry; nil
    /// when the route does not retry or the body outgrew the buffer limit.
    private var replay: CircularBuffer<HTTPClientRequestPart>?
    private var replayBodyBytes = 0
    /// Endpoints of failed tries, which a retry avoids while others remain.
    private var failedEndpoints: [EndpointState] = []
    /// Ends the try in progress when no response head came in time.
    private var perTryTimeout: Scheduled<Void>?
    /// The wait before the next try.
    private var backoff: Scheduled<Void>?
    /// The cluster's circuit breaker counts this request among its retries.
    private var holdsRetrySlot = false
    /// A response head held back while the try may still be retried: it goes
    /// to the client with the first body bytes or the end, so a try that
    /// fails between its head and its body (an instance killed mid-answer)
    /// can still be retried.
    private var heldHead: HTTPResponseHead?
    /// With outlier detection: the response head already says the endpoint
    /// failed (5xx, or a trailers-only gRPC status such as UNAVAILABLE).
    private var responseFailsEndpoint = false
    /// Set when the access log's sample picked this request.
    private var accessLogDraft: AccessLogDraft?
    /// Set when tracing is configured, sampled or not: the trace context goes on either way.
    private var traced: TracedRequest?
    /// What `/requests/{id}` will tell of this request.
    private var decisions = RequestDecisions()
    /// Body bytes received from the client and sent to it, for the metrics and the access log.
    private var bodyBytesReceived = 0
    private var bodyBytesSent = 0
    /// The response's `grpc-status`; `FinishedRequest.noGRPCStatus` until one is seen.
    private var grpcStatus = FinishedRequest.noGRPCStatus

    /// An exchange for a request whose head just arrived; the caller keeps
    /// it before calling `start`, which may finish it at once (a local answer).
    convenience init(for head: HTTPRequestHead, downstream: any ExchangeDownstream, worker: LoopWorker) {
        let requestID = head.headers.first(name: HeaderHygiene.requestIDHeader)
            ?? RequestID.generate(using: &worker.random)
        let isGRPC = head.headers.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
        self.init(downstream: downstream, worker: worker, requestID: requestID, isGRPC: isGRPC)
    }

    init(downstream: any ExchangeDownstream, worker: LoopWorker, requestID: String, isGRPC: Bool) {
        self.downstream = downstream
        self.worker = worker
        self.requestID = requestID
        self.isGRPC = isGRPC
        startTime = .now()
        worker.stats.requestStarted(listener: downstream.connection.listenerLabel)
    }

    /// Routes `head` and asks the chosen endpoint's pool for a connection or stream.
    func start(head: HTTPRequestHead, hasBody: Bool, listener: CompiledListener?) {
        var head = head
        requestHasBody = hasBody
        listenerService = listener?.destinationService
        decisions.method = head.method
        decisions.path = RequestDecisions.recordedPath(of: head.uri)
        if let accessLog = worker.accessLog, accessLog.samples(using: &worker.random) {
            accessLogDraft = AccessLogDraft(head: head)
        }
        if let tracing = worker.tracing {
            traced = TracedRequest(head: head, recorder: tracing, random: &worker.random)
        }
        if let listener,
           let error = HeaderHygiene.checkLimits(
               head.headers, maxBytes: listener.limits.maxRequestHeaderBytes, maxCount: listener.limits.maxRequestHeaders) {
            fail(error)
            return
        }
        if let reason = RequestAuthority.check(&head) {
            fail(.badRequest(reason))
            return
        }
        let path: Substring
        let normalizer = listener?.pathNormalizer
        switch normalizer?.normalize(target: head.uri) {
        case .rejected(let reason):
            fail(.badRequest(reason))
            return
        case .accepted(let normalized, let normalizedPath):
            if let normalized {
                head.uri = normalized
            }
            path = normalizedPath
        case nil:
            path = RouteMatcher.path(ofTarget: head.uri)
            if listener?.authorization != nil, !PathNormalizer.strict.readsAsSent(head.uri) {
                fail(.badRequest(
                    "a path an app could read as another: with pathNormalization off, the listener's authorization decides on paths as sent, so this one is refused"))
                return
            }
        }
        if let listener, let authorization = listener.authorization {
            guard authorize(head, path: path, listener: listener, by: authorization) else {
                // Counted for the cluster the request would have gone to, as a proxied one is.
                if let route = listener.route(method: head.method, path: path, headers: head.headers) {
                    cluster = worker.clusters[route.pickCluster(using: &worker.random)]
                }
                fail(.forbidden)
                return
            }
        }
        guard let route = listener?.route(method: head.method, path: path, headers: head.headers) else {
            fail(.noRoute)
            return
        }
        decisions.routeIndex = route.index
        if let listener {
            worker.stats.routeMatched(
                listener: downstream.connection.listenerLabel, routesVersion: listener.routesVersion, route: route.index)
        }
        // Picked now, so that a fault the route injects counts for the cluster it would have gone to.
        let cluster = worker.clusters[route.pickCluster(using: &worker.random)]
        self.cluster = cluster
        // A gRPC client's own deadline bounds the request too; the sooner wins.
        let clientTimeout = isGRPC ? head.headers.first(name: GRPCTimeout.header).flatMap(GRPCTimeout.parse) : nil
        let limit: TimeAmount? = switch (route.timeout, clientTimeout) {
        case let (route?, client?): min(route, client)
        case let (route, client): route ?? client
        }
        if let limit {
            let deadline = startTime + limit
            self.deadline = deadline
            timeout = worker.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                timedOut()
            }
        }
        if let delay = route.faultDelay(using: &worker.random) {
            decisions.faultDelay = delay
            // Held on purpose; body parts that arrive meanwhile wait in `pending`.
            faultDelay = worker.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                faultDelay = nil
                guard state == .waitingForUpstream else { return }
                // A reload during the delay may have replaced the cluster (new settings, new endpoints).
                let current = worker.cluster(named: cluster.config.name) ?? cluster
                self.cluster = current
                sendUpstream(head, route: route, to: current)
            }
            return
        }
        sendUpstream(head, route: route, to: cluster)
    }

    /// Whether the listener's authorization lets the caller make this
    /// request; every decision is counted, every denial logged.
    private func authorize(
        _ head: HTTPRequestHead, path: Substring, listener: CompiledListener, by authorization: ListenerAuthorization
    ) -> Bool {
        let identity = downstream.connection.authorizedIdentity
        let decision = authorization.decide(identity: identity, method: head.method, path: path)
        decisions.authorization = decision
        worker.stats.authorizationDecided(
            listener: downstream.connection.listenerLabel, caller: downstream.connection.callerLabel, allowed: decision.allowed)
        if !decision.allowed, let suppressed = worker.denialLogLimit.admit(nowNanoseconds: startTime.uptimeNanoseconds) {
            // A caller can send denied requests as fast as it likes: the log
            // takes a few per second and counts the rest; the metric counts all.
            var metadata: Logger.Metadata = [
                "listener": "\(listener.name)", "caller": "\(identity ?? "none")", "method": "\(head.method.rawValue)",
                "path": "\(path.prefix(256))", "rule": "\(decision.rule.map { "rules[\($0)]" } ?? "default")",
                "requestID": "\(requestID)",
            ]
            if suppressed > 0 {
                metadata["notLogged"] = "\(suppressed)"
            }
            worker.logger.notice("request denied by authorization", metadata: metadata)
        }
        return decision.allowed
    }

    /// Picks an endpoint of `cluster`, the one picked with the route, and
    /// asks the endpoint's pool for a connection or stream (unless a fault aborts it).
    private func sendUpstream(_ head: HTTPRequestHead, route: CompiledRoute, to cluster: LoopCluster) {
        if let answer = route.faultAbort(using: &worker.random) {
            fail(.faultAbort(answer))
            return
        }
        // Counted only where it can bind: a connection never has more
        // requests in flight than streams (one, over HTTP/1.1).
        let limits = downstream.connection.limits
        let maxRequests = cluster.breaker.limits.maxRequests
        if limits.maxShareOfClusterRequests < 100,
           limits.clusterShare(ofMaxRequests: maxRequests) < limits.maxConcurrentStreams {
            guard downstream.takeClusterShare(cluster.statsLabel, maxRequests: maxRequests) else {
                fail(.clusterShare)
                return
            }
            heldClusterShare = cluster.statsLabel
        }
        let inFlight = cluster.breaker.tryStartRequest()
        decisions.enteredBreaker(inFlight, limits: cluster.breaker.limits)
        guard inFlight != nil else {
            fail(.overflow(.maxRequests))
            return
        }
        holdsRequestSlot = true
        decisions.pickable = (cluster.pickableCount, cluster.endpoints.count)
        guard let endpoint = cluster.pickEndpoint(headers: head.headers, random: &worker.random) else {
            decisions.leftOut = cluster.leftOutEndpoints
            fail(.noEndpoints)
            return
        }

        // RFC 9110 section 10.1.1: an HTTP/1.0 request's expectation is ignored.
        let (fields, expectsContinue) = HeaderHygiene.upstreamRequestFields(
            head.headers, route: route, requestID: requestID, clientIP: downstream.connection.clientIP,
            isTLS: downstream.connection.isTLS, clientIdentity: downstream.connection.clientIdentity,
            defaultHost: endpoint.label, answersExpect: head.version != .http1_0)
        if expectsContinue {
            // Answer the client's Expect ourselves, as Envoy does: the body is
            // streamed to the endpoint anyway, so the endpoint's answer adds only a round trip.
            downstream.writeInterim(.continue)
        }
        var headers = fields
        if let rules = route.retry {
            retryRules = rules
            cluster.breaker.retryBudget.recordRequest(second: Self.second(of: .now()))
            if pendingBodyBytes <= rules.bufferLimitBytes {
                replay = pending
                replayBodyBytes = pendingBodyBytes
            }
            headers.replaceOrAdd(name: RetryRules.attemptHeader, value: "1")
        }
        traced?.context.propagate(into: &headers)
        upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
        startTry(on: endpoint)
    }

    /// Sends the request to `endpoint`: asks its pool for a connection or stream.
    private func startTry(on endpoint: EndpointState) {
        self.endpoint = endpoint
        endpoint.inFlight += 1
        tries += 1
        decisions.startTry(on: endpoint.label, at: .now() - startTime)
        if let limit = retryRules?.perTryTimeout {
            let thisTry = tries
            perTryTimeout = worker.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
                // A cancelled timer may still run when it was already due in
                // this loop turn: it must not end the try that followed.
                if tries == thisTry {
                    perTryTimedOut()
                }
            }
        }
        endpoint.pool.acquire(for: self)
    }

    var isWaitingForUpstream: Bool { state == .waitingForUpstream }

    /// The pool has no connection or stream for the request yet: it counts
    /// as pending in the cluster's circuit breaker until it gets one or
    /// ends. False when `maxPendingRequests` are already waiting.
    func enterPending() -> Bool {
        guard !isPending else { return true }
        guard let breaker = cluster?.breaker else { return false }
        let pending = breaker.tryAddPending()
        decisions.waitedForConnection(pending)
        guard pending != nil else { return false }
        isPending = true
        return true
    }

    private func leavePending() {
        guard isPending else { return }
        isPending = false
        cluster?.breaker.pendingEnded()
    }

    /// Neither finished nor writing its last part.
    private var isActive: Bool { state == .waitingForUpstream || state == .proxying }

    /// Whether the downstream should stop reading: nothing can take the bytes yet.
    var shouldPauseDownstreamReads: Bool {
        switch state {
        case .waitingForUpstream: pendingBodyBytes >= Self.maxPendingBodyBytes
        case .proxying: !(upstream?.isWritable ?? true)
        case .finishing, .finished: false
        }
    }

    var downstreamIsWritable: Bool { downstream.isWritable }

    // MARK: Request direction

    func upstreamAttached(_ handler: any ExchangeUpstream) {
        leavePending()
        guard state == .waitingForUpstream, var upstreamHead else {
            handler.abandon()
            return
        }
        if isGRPC, let deadline {
            // The endpoint learns how much of the deadline is left now, after
            // any wait for a connection (and on every resend).
            upstreamHead.headers.replaceOrAdd(name: GRPCTimeout.header, value: GRPCTimeout.format(deadline - .now()))
        }
        upstream = handler
        state = .proxying
        reachedEndpoint = true
        decisions.attached(at: .now() - startTime)
        handler.write(.head(upstreamHead))
        while let part = pending.popFirst() {
            handler.write(part)
        }
        pendingBodyBytes = 0
        handler.flush()
        downstream.resumeReads()
    }

    func downstreamReceived(_ part: HTTPClientRequestPart) {
        if case .body(.byteBuffer(let body)) = part {
            bodyBytesReceived += body.readableBytes
        }
        var part = part
        if case .end(let trailers) = part {
            requestEnded = true
            if let trailers {
                part = .end(HeaderHygiene.forwardedTrailers(trailers, fromClient: true))
            }
        }
        if replay != nil {
            keepForReplay(part)
        }
        switch state {
        case .waitingForUpstream:
            if case .body(.byteBuffer(let body)) = part {
                pendingBodyBytes += body.readableBytes
            }
            pending.append(part)
        case .proxying:
            upstream?.write(part)
            if case .end = part {
                upstream?.flush()
            }
        case .finishing, .finished:
            break
        }
    }

    func flushUpstream() {
        upstream?.flush()
    }

    func upstreamBecameWritable() {
        downstream.resumeReads()
    }

    // MARK: Response direction

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard state == .proxying else { return }
        switch part {
        case .head(let head):
            decisions.answered(at: .now() - startTime)
            if let failure = retryRules?.retriableFailure(response: head, isGRPC: isGRPC), mayRetry(after: failure) {
                if let failed = failure.failsEndpoint {
                    reportTry(failed: failed)
                }
                // Nothing of this response reaches the client; the endpoint's
                // stream is reset (its connection closed, for HTTP/1.1), as Envoy does.
                let answered = upstream
                upstream = nil
                answered?.abort()
                retry(after: failure)
                return
            }
            if let rules = retryRules, replay != nil, tries <= rules.attempts {
                // The per-try timeout keeps running meanwhile: a head followed by silence is a hung try.
                heldHead = head
                return
            }
            forwardHead(head)
        case .body(let body):
            if let head = heldHead {
                heldHead = nil
                forwardHead(head)
            }
            bodyBytesSent += body.readableBytes
            downstream.writeBody(body)
        case .end(let trailers):
            if let head = heldHead {
                heldHead = nil
                // No body: a gRPC failure in the trailers is as retriable as a trailers-only one.
                if isGRPC, let trailers, let failure = retryRules?.retriableFailure(grpcFields: trailers),
                   mayRetry(after: failure) {
                    if let failed = failure.failsEndpoint {
                        reportTry(failed: failed)
                    }
                    upstream = nil  // it ended by itself, and is back in its pool
                    retry(after: failure)
                    return
                }
                forwardHead(head)
            }
            if cluster?.outlierDetector != nil {
                reportTry(failed: responseFailsEndpoint || isGRPC && trailers.map(Self.grpcStatusFailsEndpoint) ?? false)
            }
            upstream = nil
            state = .finishing
            if isGRPC, let trailers {
                noteGRPCStatus(trailers)
            }
            downstream.writeEnd(trailers: trailers.map { HeaderHygiene.forwardedTrailers($0, fromClient: false) })
            finish(error: nil)
        }
    }

    /// Sends the response head to the client: from now on the request is
    /// committed to this try.
    private func forwardHead(_ head: HTTPResponseHead) {
        perTryTimeout?.cancel()
        perTryTimeout = nil
        replay = nil
        if cluster?.outlierDetector != nil {
            responseFailsEndpoint = head.status.code >= 500 || isGRPC && Self.grpcStatusFailsEndpoint(head.headers)
        }
        let headers = HeaderHygiene.downstreamResponseFields(head.headers, requestID: requestID)
        if isGRPC {
            noteGRPCStatus(head.headers)
        }
        if head.status.code >= 400 && head.status.code < 500, let reason = head.headers.first(name: LocalResponse.proxyErrorHeader) {
            // Another proxy of the mesh refused the call (the callee's sidecar denied it): a 4xx that fails it.
            refusedOnTheWay = ProxyError.reasonFailsTheCall(reason)
        }
        responseStatus = head.status
        downstream.writeResponseHead(status: head.status, headers: headers)
    }

    func flushDownstream() {
        downstream.flush()
    }

    func downstreamBecameWritable() {
        upstream?.resumeReading()
    }

    // MARK: Failures

    /// The endpoint refused the stream without processing it (HTTP/2
    /// REFUSED_STREAM, or a stream above a GOAWAY's last stream ID, as when an
    /// endpoint recycles a connection after so many requests). A request
    /// without a body is whole in hand, so it goes out again on another
    /// connection, which the client never notices; one with a body fails
    /// like a reset, as its bytes are already gone.
    ///
    /// A route that retries on `refused-stream` (or `reset`, `5xx`,
    /// `gateway-error`) retries instead, bodies included, within its limits.
    func upstreamRefused() {
        guard isActive, endpoint != nil else { return }
        upstream = nil
        if mayRetry(after: .refused) {
            retry(after: .refused)
            return
        }
        guard state == .proxying, responseStatus == nil, !requestHasBody, refusals < Self.maxRefusals,
              let endpoint else {
            fail(.upstreamReset)
            return
        }
        refusals += 1
        state = .waitingForUpstream
        if requestEnded {
            pending.append(.end(nil))
        }
        endpoint.pool.acquire(for: self)
    }

    /// The upstream connection or stream failed or closed before the response
    /// ended, or no connection could be had: retried when the route's rules
    /// allow, the request's failure otherwise.
    func upstreamFailed(_ error: ProxyError) {
        // Between tries nothing upstream may speak for the request.
        guard isActive, endpoint != nil else { return }
        upstream = nil
        let failure: TryFailure? = switch error {
        case .connectFailure: .connectFailure
        case .upstreamReset: .reset
        default: nil
        }
        if failure != nil {
            reportTry(failed: true)
        }
        if let failure, mayRetry(after: failure) {
            retry(after: failure)
            return
        }
        fail(error)
    }

    /// The try got no response head within the route's `perTryTimeout`.
    private func perTryTimedOut() {
        perTryTimeout = nil
        guard isActive, responseStatus == nil, endpoint != nil else { return }
        let abandoned = upstream
        upstream = nil
        abandoned?.abort()
        reportTry(failed: true)
        worker.stats.timedOut(cluster: cluster?.statsLabel ?? 0, kind: "per_try")
        if mayRetry(after: .perTryTimeout) {
            retry(after: .perTryTimeout)
        } else {
            fail(.perTryTimeout)
        }
    }

    // MARK: Retries

    /// Whether the failed try may be retried: the rules cover the failure,
    /// tries are left, nothing went to the client, the request can be sent
    /// again, and both the circuit breaker's `maxRetries` and the cluster's
    /// retry budget allow one more. Takes the retry slot and spends budget when true.
    private func mayRetry(after failure: TryFailure) -> Bool {
        guard let rules = retryRules, let breaker = cluster?.breaker, responseStatus == nil, replay != nil,
              tries <= rules.attempts, rules.covers(failure) else { return false }
        let now = NIODeadline.now()
        if let deadline, deadline <= now {
            return false
        }
        let takesSlot = !holdsRetrySlot
        if takesSlot {
            guard breaker.tryStartRetry() else { return false }
        }
        guard breaker.retryBudget.tryWithdraw(rules.budget, second: Self.second(of: now)) else {
            if takesSlot {
                breaker.retryFinished()
            }
            return false
        }
        holdsRetrySlot = true
        return true
    }

    /// Ends the failed try and sends the request again after a backoff, to
    /// another endpoint when the cluster has one. The next try always starts
    /// on a later loop turn, so nothing of the failed try's call stack can
    /// reach it.
    private func retry(after failure: TryFailure) {
        guard let rules = retryRules, let cluster, let replay else { return }
        decisions.retried(because: failure.cause)
        endTry()
        backoff?.cancel()
        worker.stats.requestRetried(cluster: cluster.statsLabel, cause: failure.cause)
        state = .waitingForUpstream
        pending = replay
        pendingBodyBytes = replayBodyBytes
        upstreamHead?.headers.replaceOrAdd(name: RetryRules.attemptHeader, value: String(tries + 1))
        let delay = rules.backoff(retry: tries, random: &worker.random)
        backoff = worker.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            backoff = nil
            guard state == .waitingForUpstream, let cluster = self.cluster, let head = upstreamHead else { return }
            guard let endpoint = cluster.pickRetryEndpoint(headers: head.headers, random: &worker.random, avoiding: failedEndpoints) else {
                decisions.leftOut = cluster.leftOutEndpoints
                fail(.noEndpoints)
                return
            }
            startTry(on: endpoint)
        }
    }

    /// The try in progress is over: it leaves its pool's queue and its endpoint's count.
    private func endTry() {
        perTryTimeout?.cancel()
        perTryTimeout = nil
        heldHead = nil
        if isPending {
            endpoint?.pool.stopWaiting(self)
            leavePending()
        }
        if let endpoint {
            endpoint.inFlight -= 1
            failedEndpoints.append(endpoint)
            self.endpoint = nil
        }
    }

    /// Tells the cluster's outlier detection how the try in progress went.
    private func reportTry(failed: Bool) {
        if let endpoint {
            cluster?.report(endpoint, failed: failed)
        }
    }

    /// Whether a header block's `grpc-status` is one that counts against the endpoint.
    private static func grpcStatusFailsEndpoint(_ fields: HTTPHeaders) -> Bool {
        guard let value = fields.first(name: "grpc-status"), let code = Int(value) else { return false }
        return GRPCStatusCode(rawValue: code)?.meansServerFailure ?? false
    }

    /// Adds a part to the replay buffer, or drops the buffer (and with it
    /// any retry) once the body passes the rules' buffer limit.
    private func keepForReplay(_ part: HTTPClientRequestPart) {
        if case .body(.byteBuffer(let body)) = part {
            replayBodyBytes += body.readableBytes
            if replayBodyBytes > retryRules?.bufferLimitBytes ?? 0 {
                replay = nil
                return
            }
        }
        replay?.append(part)
    }

    /// Whole seconds of the monotonic clock, the retry budget's time slots.
    private static func second(of time: NIODeadline) -> Int {
        Int(time.uptimeNanoseconds / 1_000_000_000)
    }

    private func timedOut() {
        guard isActive else { return }
        timeout = nil
        // A try that had not answered by the deadline is a slow endpoint (a
        // long stream that did answer, or a request still queued in the
        // proxy's own pool, is not).
        if upstream != nil && responseStatus == nil {
            reportTry(failed: true)
        }
        let abandoned = upstream
        upstream = nil
        abandoned?.abort()
        worker.stats.timedOut(cluster: cluster?.statsLabel ?? 0, kind: "route")
        fail(.timeout)
    }

    /// No bytes went either way for the listener's `streamIdleTimeout`: 408
    /// while the client was still sending, 504 while the endpoint was to
    /// answer, the response cut off once it started.
    func streamIdleTimedOut() {
        guard isActive else { return }
        // An endpoint that took the whole request and said nothing is a slow one.
        if upstream != nil && responseStatus == nil && requestEnded {
            reportTry(failed: true)
        }
        let abandoned = upstream
        upstream = nil
        abandoned?.abort()
        fail(.streamIdleTimeout(clientSending: !requestEnded))
    }

    /// The client went away (connection closed, stream reset): nothing to answer.
    func downstreamClosed() {
        guard isActive else { return }
        let abandoned = upstream
        upstream = nil
        abandoned?.abort()
        finish(error: nil)
    }

    /// The rest of the request could not be parsed.
    func downstreamMalformed(_ error: ProxyError) {
        guard isActive else { return }
        let abandoned = upstream
        upstream = nil
        abandoned?.abort()
        fail(error)
    }

    /// Answers with a local response when nothing went downstream yet;
    /// otherwise ends the response as well as the protocol allows.
    func fail(_ error: ProxyError) {
        guard isActive else { return }
        state = .finishing
        if responseStatus == nil {
            responseStatus = downstream.writeLocalResponse(
                for: error, isGRPC: isGRPC, requestID: requestID, explainHint: worker.explainHint)
        } else if isGRPC && downstream.connection.isHTTP2 {
            // Headers are out: trailers still give a gRPC caller a status.
            downstream.writeEnd(
                trailers: LocalResponse.grpcTrailers(for: error, requestID: requestID, explainHint: worker.explainHint))
        } else {
            downstream.abortResponse()
        }
        finish(error: error)
    }

    private func finish(error: ProxyError?) {
        state = .finished
        timeout?.cancel()
        timeout = nil
        faultDelay?.cancel()
        faultDelay = nil
        perTryTimeout?.cancel()
        perTryTimeout = nil
        backoff?.cancel()
        backoff = nil
        pending.removeAll()
        replay = nil
        if isPending {
            endpoint?.pool.stopWaiting(self)
            leavePending()
        }
        if holdsRequestSlot {
            holdsRequestSlot = false
            cluster?.breaker.requestFinished()
        }
        if let share = heldClusterShare {
            heldClusterShare = nil
            downstream.releaseClusterShare(share)
        }
        if holdsRetrySlot {
            holdsRetrySlot = false
            cluster?.breaker.retryFinished()
        }
        endpoint?.inFlight -= 1
        let elapsed = NIODeadline.now() - startTime
        if isGRPC, grpcStatus == FinishedRequest.noGRPCStatus, let error {
            grpcStatus = UInt8(error.grpcStatus.rawValue)
        }
        let connection = downstream.connection
        let serviceLabel = cluster?.serviceLabel ?? listenerService.map(worker.stats.label) ?? 0
        worker.stats.requestFinished(FinishedRequest(
            route: LoopStats.RouteKey(
                listener: connection.listenerLabel, direction: connection.direction,
                cluster: cluster?.statsLabel ?? 0, service: serviceLabel),
            reachedEndpoint: reachedEndpoint, refusedOnTheWay: refusedOnTheWay,
            // Between tries, the endpoint that failed last.
            endpoint: (endpoint ?? failedEndpoints.last)?.statsLabel ?? 0,
            status: responseStatus.map { StatusClass(code: Int($0.code)) } ?? .none,
            grpcStatus: grpcStatus,
            durationNanoseconds: elapsed.nanoseconds,
            bytesReceived: bodyBytesReceived, bytesSent: bodyBytesSent,
            error: error
        ))
        if let draft = accessLogDraft, let accessLog = worker.accessLog {
            accessLog.record(accessLogEntry(draft, elapsed: elapsed, error: error))
        }
        if let traced, traced.context.sampled, let tracing = worker.tracing {
            tracing.record(span(traced, elapsed: elapsed, error: error))
        }
        if requestID.utf8.count <= RequestDecisions.maxRecordedIDBytes {
            worker.recentRequests.add(record(elapsed: elapsed, error: error))
        }
        downstream.exchangeFinished(self)
    }

    /// `grpc-status` from a response's trailers (or a trailers-only head).
    private func noteGRPCStatus(_ fields: HTTPHeaders) {
        if let value = fields.first(name: "grpc-status"), let code = UInt8(value) {
            // gRPC has 17 codes; clients read any other as UNKNOWN, and so does the `grpc_status` label.
            grpcStatus = code <= 16 ? code : 2
        }
    }

    private func accessLogEntry(_ draft: AccessLogDraft, elapsed: TimeAmount, error: ProxyError?) -> AccessLogEntry {
        let connection = downstream.connection
        return AccessLogEntry(
            startNanoseconds: draft.startNanoseconds, durationNanoseconds: elapsed.nanoseconds,
            listener: connection.listenerName, httpProtocol: connection.isHTTP2 ? "HTTP/2" : "HTTP/1.1",
            method: draft.method, authority: draft.authority, path: draft.path,
            status: responseStatus.map { Int($0.code) },
            grpcStatus: grpcStatus == FinishedRequest.noGRPCStatus ? nil : Int(grpcStatus),
            cluster: cluster?.config.name, endpoint: (endpoint ?? failedEndpoints.last)?.label,
            attempts: tries, bytesReceived: bodyBytesReceived, bytesSent: bodyBytesSent,
            caller: connection.authorizedIdentity, traceID: traced?.context.traceID.hex ?? draft.traceID,
            requestID: requestID, proxyError: error?.reason)
    }

    private func record(elapsed: TimeAmount, error: ProxyError?) -> RequestRecord {
        let connection = downstream.connection
        return RequestRecord(
            requestID: requestID, startNanoseconds: WallClock.nanoseconds() - elapsed.nanoseconds, duration: elapsed,
            listener: connection.listenerName, direction: connection.direction, method: decisions.method,
            path: decisions.path, isGRPC: isGRPC, isHTTP2: connection.isHTTP2, caller: connection.authorizedIdentity,
            authorization: decisions.authorization, routeIndex: decisions.routeIndex, cluster: cluster?.config.name,
            service: cluster?.config.destinationService,
            pickable: decisions.pickable, leftOut: decisions.leftOut, breaker: decisions.breaker, faultDelay: decisions.faultDelay, firstTry: decisions.firstTry,
            laterTries: decisions.laterTries, status: responseStatus.map { Int($0.code) },
            grpcStatus: grpcStatus == FinishedRequest.noGRPCStatus ? nil : Int(grpcStatus), proxyError: error,
            bytesReceived: bodyBytesReceived, bytesSent: bodyBytesSent)
    }

    private func span(_ traced: TracedRequest, elapsed: TimeAmount, error: ProxyError?) -> ProxySpan {
        let connection = downstream.connection
        return ProxySpan(
            context: traced.context, direction: connection.direction,
            startNanoseconds: traced.startNanoseconds, endNanoseconds: traced.startNanoseconds + elapsed.nanoseconds,
            method: traced.method, target: traced.target, authority: traced.authority,
            isHTTP2: connection.isHTTP2, isTLS: connection.isTLS, isGRPC: isGRPC,
            status: responseStatus.map { Int($0.code) },
            grpcStatus: grpcStatus == FinishedRequest.noGRPCStatus ? nil : Int(grpcStatus),
            listener: connection.listenerName, cluster: cluster?.config.name,
            endpoint: (endpoint ?? failedEndpoints.last)?.label, attempts: tries, requestID: requestID,
            proxyError: error?.reason, caller: connection.authorizedIdentity, clientIP: connection.clientIP)
    }
}
