import MeshConfig
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshProxy

/// The exchange's decisions without any I/O: each test feeds events in the
/// order a connection, a pool or a timer would, with time as an argument
/// (a clock of the test's own), and checks the one action that comes out.
@Suite("Exchange machine")
struct ExchangeMachineTests {
    /// The cluster's side: admits while told to, and counts what it was asked.
    final class FakeAdmission: ClusterAdmission {
        var share = ClusterShareAnswer.notCounted
        var requestSlots = true
        var admits = true
        var backoff = TimeAmount.milliseconds(10)
        /// The retries asked for, and whether the request held a retry slot then.
        private(set) var asked: [Int] = []
        private(set) var askedHolding: [Bool] = []

        func takeClusterShare() -> ClusterShareAnswer { share }
        func startRequest() -> Bool { requestSlots }

        func admitRetry(_ rules: RetryRules, retry: Int, holdingRetrySlot: Bool, now: NIODeadline) -> TimeAmount? {
            asked.append(retry)
            askedHolding.append(holdingRetrySlot)
            return admits ? backoff : nil
        }
    }

    private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let admission = FakeAdmission()

    private func rules(
        _ conditions: [RetryPolicy.Condition], attempts: Int = 2, perTryTimeout: MeshDuration? = nil,
        bufferLimitBytes: Int = 1024
    ) -> RetryRules {
        RetryRules(RetryPolicy(
            attempts: attempts, conditions: conditions, perTryTimeout: perTryTimeout, bufferLimitBytes: bufferLimitBytes))
    }

    private func head(_ status: Int, grpcStatus: Int? = nil) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        if let grpcStatus {
            headers.add(name: "grpc-status", value: String(grpcStatus))
        }
        return HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    private func body(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }

    /// A machine routed with `retry` whose first try has its connection; the request sent whole.
    private func proxying(
        retry: RetryRules? = nil, hasBody: Bool = true, isGRPC: Bool = false, deadline: NIODeadline? = nil,
        detectsOutliers: Bool = false
    ) -> ExchangeMachine {
        var machine = ExchangeMachine(isGRPC: isGRPC, requestHasBody: hasBody)
        machine.routed(deadline: deadline, retry: retry)
        #expect(machine.admit(admission, detectsOutliers: detectsOutliers) == .none)
        if hasBody {
            _ = machine.requestReceived(.body(body("hello")))
        }
        _ = machine.requestReceived(.end(nil))
        #expect(machine.startTry() == 1)
        _ = machine.upstreamAttached()
        return machine
    }

    // MARK: One try

    @Test func partsWaitForTheConnectionThenFlowThrough() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: true)
        machine.routed(deadline: nil, retry: nil)
        _ = machine.admit(admission, detectsOutliers: false)
        #expect(machine.requestReceived(.body(body("a"))) == .none)
        #expect(machine.startTry() == 1)
        #expect(machine.requestReceived(.body(body("b"))) == .none)
        #expect(machine.upstreamAttached() == .sendRequest(attempt: 1, buffered: [.body(body("a")), .body(body("b"))]))
        #expect(machine.requestReceived(.end(nil)) == .forwardRequestPart(.end(nil)))
        #expect(machine.responseHead(head(200), now: t0, admission: admission) == .writeResponseHead(head(200)))
        #expect(machine.responseBody(body("x")) == .writeResponseBody(body("x"), heldHead: nil))
        #expect(machine.responseEnd(nil, now: t0, admission: admission) == .endResponse(trailers: nil, heldHead: nil, report: nil))
        #expect(machine.phase == .finished)
        #expect(admission.asked.isEmpty)
    }

    @Test func theClientPausesOnceEnoughBodyWaits() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: true)
        machine.routed(deadline: nil, retry: nil)
        _ = machine.admit(admission, detectsOutliers: false)
        _ = machine.startTry()
        _ = machine.requestReceived(.body(ByteBuffer(repeating: 0, count: ExchangeMachine.maxWaitingBodyBytes - 1)))
        #expect(!machine.waitingBodyIsFull)
        _ = machine.requestReceived(.body(body("x")))
        #expect(machine.waitingBodyIsFull)
        _ = machine.upstreamAttached()
        #expect(!machine.waitingBodyIsFull)
    }

    @Test func eventsAfterTheEndAreIgnored() {
        var machine = proxying()
        #expect(machine.downstreamClosed() == .abandon)
        #expect(machine.responseHead(head(200), now: t0, admission: admission) == .none)
        #expect(machine.responseBody(body("x")) == .none)
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .none)
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.streamIdle() == .none)
        #expect(machine.fail(.noRoute) == .none)
        #expect(machine.downstreamClosed() == .none)
        #expect(machine.upstreamAttached() == .giveBack)
    }

    @Test func aFailureAfterTheHeadCannotBecomeAnAnswerButStillFails() {
        var machine = proxying()
        _ = machine.responseHead(head(200), now: t0, admission: admission)
        #expect(machine.responseStarted)
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
    }

    // MARK: Retries

    @Test func aRetriedStatusSendsTheWholeRequestAgainAsTheNextAttempt() {
        var machine = proxying(retry: rules([.serverError]))
        #expect(machine.responseHead(head(503), now: t0, admission: admission)
            == .retry(.status(503), report: true, backoff: .milliseconds(10)))
        #expect(machine.phase == .backingOff)
        #expect(admission.asked == [1])
        // Parts the client sends during the backoff join the replay.
        #expect(machine.backoffEnded())
        #expect(machine.startTry() == 2)
        #expect(machine.upstreamAttached() == .sendRequest(attempt: 2, buffered: [.body(body("hello")), .end(nil)]))
    }

    @Test func aStatusTheRulesDoNotNameIsForwardedWithoutAskingTheCluster() {
        var machine = proxying(retry: rules([.serverError], attempts: 0))
        #expect(machine.responseHead(head(404), now: t0, admission: admission) == .writeResponseHead(head(404)))
        #expect(admission.asked.isEmpty)
    }

    @Test func theHeadIsHeldWhileTheTryMayStillFail() {
        var machine = proxying(retry: rules([.reset]))
        #expect(machine.responseHead(head(200), now: t0, admission: admission) == .none)
        #expect(machine.phase == .proxying(.held(head(200))))
        // The endpoint dies before its body: retried, and the client never saw the head.
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .retry(.reset, report: true, backoff: .milliseconds(10)))
        #expect(!machine.responseStarted)
    }

    @Test func theHeldHeadGoesWithTheFirstBodyBytes() {
        var machine = proxying(retry: rules([.reset]))
        _ = machine.responseHead(head(200), now: t0, admission: admission)
        #expect(machine.responseBody(body("x")) == .writeResponseBody(body("x"), heldHead: head(200)))
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
    }

    @Test func theHeldHeadGoesWithTheEnd() {
        var machine = proxying(retry: rules([.reset]), detectsOutliers: true)
        _ = machine.responseHead(head(500), now: t0, admission: admission)
        #expect(machine.responseEnd(nil, now: t0, admission: admission)
            == .endResponse(trailers: nil, heldHead: head(500), report: true))
    }

    @Test func aGRPCFailureInTheTrailersOfABodilessResponseIsRetried() {
        var machine = proxying(retry: rules([.unavailable]), isGRPC: true)
        _ = machine.responseHead(head(200), now: t0, admission: admission)
        let trailers = HTTPHeaders([("grpc-status", "14")])
        #expect(machine.responseEnd(trailers, now: t0, admission: admission)
            == .retry(.grpcStatus(.unavailable), report: true, backoff: .milliseconds(10)))
    }

    @Test func triesStopAtTheRulesAttempts() {
        var machine = proxying(retry: rules([.connectFailure], attempts: 1))
        #expect(machine.upstreamFailed(.connectFailure, now: t0, admission: admission)
            == .retry(.connectFailure, report: true, backoff: .milliseconds(10)))
        #expect(machine.backoffEnded())
        #expect(machine.startTry() == 2)
        #expect(machine.upstreamFailed(.connectFailure, now: t0, admission: admission) == .fail(.connectFailure, report: true))
        #expect(admission.asked == [1])
    }

    @Test func theClusterCanRefuseTheRetry() {
        var machine = proxying(retry: rules([.reset]))
        admission.admits = false
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
        #expect(admission.asked == [1])
    }

    @Test func noRetryPastTheDeadline() {
        var machine = proxying(retry: rules([.reset]), deadline: t0 + .seconds(1))
        #expect(machine.upstreamFailed(.reset, now: t0 + .seconds(1), admission: admission) == .fail(.upstreamReset, report: true))
        #expect(admission.asked.isEmpty)
    }

    @Test func aBodyPastTheBufferLimitIsNotRetried() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: true)
        machine.routed(deadline: nil, retry: rules([.reset], bufferLimitBytes: 4))
        _ = machine.admit(admission, detectsOutliers: false)
        _ = machine.requestReceived(.body(body("hello")))
        _ = machine.startTry()
        _ = machine.upstreamAttached()
        #expect(machine.responseHead(head(200), now: t0, admission: admission) == .writeResponseHead(head(200)))
        var again = ExchangeMachine(isGRPC: false, requestHasBody: true)
        again.routed(deadline: nil, retry: rules([.reset], bufferLimitBytes: 4))
        _ = again.admit(admission, detectsOutliers: false)
        _ = again.requestReceived(.body(body("hello")))
        _ = again.startTry()
        #expect(again.upstreamFailed(.reset, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
    }

    @Test func aPendingOverflowIsNeitherRetriedNorTheEndpointsFault() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: false)
        machine.routed(deadline: nil, retry: rules([.connectFailure, .reset]))
        _ = machine.admit(admission, detectsOutliers: true)
        _ = machine.startTry()
        #expect(machine.upstreamFailed(.pendingOverflow, now: t0, admission: admission)
            == .fail(.overflow(.maxPendingRequests), report: nil))
        #expect(admission.asked.isEmpty)
    }

    // MARK: What the request holds of its cluster

    @Test func admissionTakesTheShareThenTheRequestSlot() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: false)
        machine.routed(deadline: nil, retry: nil)
        admission.share = .taken
        #expect(machine.admit(admission, detectsOutliers: false) == .none)
        #expect(machine.held == [.clusterShare, .request])
        _ = machine.startTry()
        _ = machine.upstreamAttached()
        _ = machine.responseHead(head(200), now: t0, admission: admission)
        _ = machine.responseEnd(nil, now: t0, admission: admission)
        #expect(machine.releaseHeld() == [.clusterShare, .request])
        #expect(machine.releaseHeld() == [], "given back once")
    }

    @Test func aRefusedShareTakesNothing() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: false)
        machine.routed(deadline: nil, retry: nil)
        admission.share = .refused
        #expect(machine.admit(admission, detectsOutliers: false) == .fail(.clusterShare, report: nil))
        #expect(machine.held == [] && machine.phase == .finished)
    }

    @Test func aBreakerAtItsLimitStillLeavesTheShareToGiveBack() {
        var machine = ExchangeMachine(isGRPC: true, requestHasBody: false)
        machine.routed(deadline: nil, retry: nil)
        admission.share = .taken
        admission.requestSlots = false
        #expect(machine.admit(admission, detectsOutliers: false) == .fail(.overflow(.maxRequests), report: nil))
        #expect(machine.releaseHeld() == [.clusterShare])
    }

    @Test func theRetrySlotIsTakenOnceAndHeldUntilTheEnd() {
        var machine = proxying(retry: rules([.reset], attempts: 3))
        for number in 1...3 {
            #expect(machine.upstreamFailed(.reset, now: t0, admission: admission)
                == .retry(.reset, report: true, backoff: .milliseconds(10)))
            #expect(machine.backoffEnded())
            #expect(machine.startTry() == number + 1)
        }
        #expect(admission.askedHolding == [false, true, true])
        #expect(machine.upstreamFailed(.reset, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
        #expect(machine.releaseHeld() == [.request, .retry])
    }

    @Test func aRefusedRetryHoldsNoRetrySlot() {
        var machine = proxying(retry: rules([.reset]))
        admission.admits = false
        _ = machine.upstreamFailed(.reset, now: t0, admission: admission)
        #expect(machine.releaseHeld() == [.request])
    }

    // MARK: Per-try timeouts and the deadline

    @Test func aPerTryTimeoutRetriesOnlyTheTryInProgress() {
        var machine = proxying(retry: rules([.reset], attempts: 1, perTryTimeout: .milliseconds(100)))
        #expect(machine.perTryTimedOut(1, now: t0, admission: admission)
            == .retry(.perTryTimeout, report: true, backoff: .milliseconds(10)))
        // The first try's timer, cancelled but already due, fires late: ignored.
        #expect(machine.perTryTimedOut(1, now: t0, admission: admission) == .none)
        #expect(machine.backoffEnded())
        #expect(machine.startTry() == 2)
        #expect(machine.perTryTimedOut(1, now: t0, admission: admission) == .none)
        #expect(machine.perTryTimedOut(2, now: t0, admission: admission) == .fail(.perTryTimeout, report: true))
    }

    @Test func aPerTryTimeoutEndsATryStillWaitingForItsConnection() {
        var machine = ExchangeMachine(isGRPC: false, requestHasBody: false)
        machine.routed(deadline: nil, retry: rules([.reset], perTryTimeout: .milliseconds(100)))
        _ = machine.admit(admission, detectsOutliers: false)
        _ = machine.startTry()
        #expect(machine.perTryTimedOut(1, now: t0, admission: admission)
            == .retry(.perTryTimeout, report: true, backoff: .milliseconds(10)))
    }

    @Test func theDeadlineBlamesOnlyAnEndpointThatHadTheRequest() {
        var waiting = ExchangeMachine(isGRPC: false, requestHasBody: false)
        waiting.routed(deadline: t0, retry: nil)
        _ = waiting.admit(admission, detectsOutliers: true)
        _ = waiting.startTry()
        #expect(waiting.deadlinePassed() == .fail(.timeout, report: nil))
        var silent = proxying(deadline: t0)
        #expect(silent.deadlinePassed() == .fail(.timeout, report: true))
        var answered = proxying(deadline: t0)
        _ = answered.responseHead(head(200), now: t0, admission: admission)
        #expect(answered.deadlinePassed() == .fail(.timeout, report: nil))
    }

    @Test func anIdleStreamIs408WhileTheClientSendsAnd504After() {
        var sending = ExchangeMachine(isGRPC: false, requestHasBody: true)
        sending.routed(deadline: nil, retry: nil)
        _ = sending.admit(admission, detectsOutliers: false)
        _ = sending.startTry()
        _ = sending.upstreamAttached()
        #expect(sending.streamIdle() == .fail(.streamIdleTimeout(clientSending: true), report: nil))
        var waiting = proxying()
        #expect(waiting.streamIdle() == .fail(.streamIdleTimeout(clientSending: false), report: true))
    }

    // MARK: Refusals

    @Test func aRefusedBodilessRequestGoesAgainAtMostThreeTimes() {
        var machine = proxying(hasBody: false)
        for _ in 0..<ExchangeMachine.maxRefusals {
            #expect(machine.upstreamRefused(now: t0, admission: admission) == .resend)
            #expect(machine.phase == .awaitingEndpoint)
            // The end the client sent goes again with the head.
            #expect(machine.upstreamAttached() == .sendRequest(attempt: 1, buffered: [.end(nil)]))
        }
        #expect(machine.upstreamRefused(now: t0, admission: admission) == .fail(.upstreamReset, report: nil))
    }

    @Test func aRefusedRequestWithABodyFailsLikeAReset() {
        var machine = proxying(hasBody: true)
        #expect(machine.upstreamRefused(now: t0, admission: admission) == .fail(.upstreamReset, report: nil))
    }

    @Test func aRouteRetryingRefusalsRetriesWithoutBlamingTheEndpoint() {
        var machine = proxying(retry: rules([.refusedStream]), hasBody: true)
        #expect(machine.upstreamRefused(now: t0, admission: admission) == .retry(.refused, report: nil, backoff: .milliseconds(10)))
    }

    // MARK: Outlier reports

    @Test func outlierDetectionHearsHowTheTryEnded() {
        var ok = proxying(detectsOutliers: true)
        _ = ok.responseHead(head(200), now: t0, admission: admission)
        #expect(ok.responseEnd(nil, now: t0, admission: admission) == .endResponse(trailers: nil, heldHead: nil, report: false))
        var failing = proxying(detectsOutliers: true)
        _ = failing.responseHead(head(502), now: t0, admission: admission)
        #expect(failing.responseEnd(nil, now: t0, admission: admission) == .endResponse(trailers: nil, heldHead: nil, report: true))
        var unavailable = proxying(isGRPC: true, detectsOutliers: true)
        _ = unavailable.responseHead(head(200), now: t0, admission: admission)
        let trailers = HTTPHeaders([("grpc-status", "14")])
        #expect(unavailable.responseEnd(trailers, now: t0, admission: admission)
            == .endResponse(trailers: trailers, heldHead: nil, report: true))
    }

    @Test func anEndWithoutAHeadIsAReset() {
        var machine = proxying()
        #expect(machine.responseEnd(nil, now: t0, admission: admission) == .fail(.upstreamReset, report: true))
    }
}
