import Logging
import MeshHTTP1
import NIOCore
import NIOHTTP1

/// Before the first try: the request head is checked, authorized and
/// routed, its cluster picked and its deadline set; a fault may hold or
/// answer it; the cluster's circuit breaker and the client's share of the
/// cluster admit it; then the first endpoint is picked.
extension ProxyExchange {
    /// Routes `head` and starts its first try (or answers it at once).
    func start(head: HTTPRequestHead, listener: CompiledListener?) {
        var head = head
        info.listenerService = listener?.destinationService
        info.method = head.method
        info.path = RequestInfo.recordedPath(of: head.uri)
        if let accessLog = worker.accessLog, accessLog.samples(using: &worker.random) {
            info.accessLogDraft = AccessLogDraft(head: head)
        }
        if let tracing = worker.tracing {
            info.traced = TracedRequest(head: head, recorder: tracing, random: &worker.random)
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
        switch listener?.pathNormalizer?.normalize(target: head.uri) {
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
        info.routeIndex = route.index
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
        let deadline = limit.map { info.start + $0 }
        machine.routed(deadline: deadline, retry: route.retry)
        if let deadline {
            deadlineTimer = worker.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                deadlinePassed()
            }
        }
        if let delay = route.faultDelay(using: &worker.random) {
            info.faultDelay = delay
            info.flags.insert(.faultDelayed)
            // Held on purpose; body parts that arrive meanwhile wait in the machine.
            faultDelayTimer = worker.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                faultDelayTimer = nil
                guard machine.phase == .routing else { return }
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
        info.authorization = decision
        worker.stats.authorizationDecided(
            listener: downstream.connection.listenerLabel, caller: downstream.connection.callerLabel, allowed: decision.allowed)
        if !decision.allowed, let suppressed = worker.denialLogLimit.admit(nowNanoseconds: info.start.uptimeNanoseconds) {
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

    /// Has the request admitted to `cluster` (unless a fault aborts it),
    /// picks an endpoint, builds the head endpoints get, and starts the first try.
    private func sendUpstream(_ head: HTTPRequestHead, route: CompiledRoute, to cluster: LoopCluster) {
        if let answer = route.faultAbort(using: &worker.random) {
            fail(.faultAbort(answer))
            return
        }
        perform(machine.admit(self, detectsOutliers: cluster.outlierDetector != nil))
        guard machine.isActive else { return }
        let pickable = cluster.pickableCount
        info.pickable = (pickable, cluster.endpoints.count)
        if pickable < cluster.endpoints.count {
            info.flags.insert(.endpointsSkipped)
        }
        guard let endpoint = cluster.pickEndpoint(headers: head.headers, random: &worker.random) else {
            info.leftOut = cluster.leftOutEndpoints
            fail(.noEndpoints)
            return
        }

        // RFC 9110 section 10.1.1: an HTTP/1.0 request's expectation is ignored.
        let connection = downstream.connection
        var (headers, expectsContinue) = HeaderHygiene.upstreamRequestFields(
            head.headers, route: route, requestID: requestID, clientIP: connection.clientIP,
            isTLS: connection.isTLS, clientIdentity: connection.clientIdentity,
            defaultHost: endpoint.label, answersExpect: head.version != .http1_0)
        if expectsContinue {
            // Answer the client's Expect ourselves, as Envoy does: the body is
            // streamed to the endpoint anyway, so the endpoint's answer adds only a round trip.
            downstream.writeInterim(.continue)
        }
        if route.retry != nil {
            cluster.breaker.retryBudget.recordRequest(second: Self.second(of: .now()))
            headers.replaceOrAdd(name: RetryRules.attemptHeader, value: "1")
        }
        info.traced?.context.propagate(into: &headers)
        upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
        startTry(on: endpoint)
    }
}
