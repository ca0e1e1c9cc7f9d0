import MeshConfig
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite("Retry rules")
struct RetryRulesTests {
    private func rules(_ conditions: [RetryPolicy.Condition], codes: [Int] = []) -> RetryRules {
        RetryRules(RetryPolicy(conditions: conditions, retriableStatusCodes: codes))
    }

    private func head(_ status: Int, grpcStatus: Int? = nil) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        if let grpcStatus {
            headers.add(name: "grpc-status", value: String(grpcStatus))
        }
        return HTTPResponseHead(version: .http2, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    @Test func eachFailureHasItsOwnCondition() {
        #expect(rules([.connectFailure]).covers(.connectFailure))
        #expect(!rules([.connectFailure]).covers(.reset))
        #expect(rules([.refusedStream]).covers(.refused))
        #expect(!rules([.refusedStream]).covers(.reset))
        #expect(rules([.reset]).covers(.reset))
        #expect(rules([.reset]).covers(.perTryTimeout))
        #expect(!rules([.unavailable]).covers(.connectFailure))
    }

    /// As in Envoy: 5xx and gateway-error also retry tries that got no response.
    @Test func serverErrorConditionsCoverTriesWithoutAResponse() {
        for broad in [RetryPolicy.Condition.serverError, .gatewayError] {
            for failure in [TryFailure.connectFailure, .reset, .refused, .perTryTimeout] {
                #expect(rules([broad]).covers(failure), "\(broad) should cover \(failure)")
            }
        }
    }

    @Test func statusesByCondition() {
        #expect(rules([.gatewayError]).retriableFailure(response: head(503), isGRPC: false) == .status(503))
        #expect(rules([.gatewayError]).retriableFailure(response: head(500), isGRPC: false) == nil)
        #expect(rules([.serverError]).retriableFailure(response: head(500), isGRPC: false) == .status(500))
        #expect(rules([.serverError]).retriableFailure(response: head(404), isGRPC: false) == nil)
        #expect(rules([.retriableStatusCodes], codes: [409]).retriableFailure(response: head(409), isGRPC: false) == .status(409))
        #expect(rules([.unavailable]).retriableFailure(response: head(200), isGRPC: false) == nil)
    }

    /// A trailers-only gRPC response carries grpc-status in its one header block.
    @Test func grpcStatusesFromTrailersOnlyResponses() {
        let unavailable = rules([.unavailable, .cancelled])
        #expect(unavailable.retriableFailure(response: head(200, grpcStatus: 14), isGRPC: true) == .grpcStatus(.unavailable))
        #expect(unavailable.retriableFailure(response: head(200, grpcStatus: 1), isGRPC: true) == .grpcStatus(.cancelled))
        #expect(unavailable.retriableFailure(response: head(200, grpcStatus: 13), isGRPC: true) == nil)
        #expect(unavailable.retriableFailure(response: head(200, grpcStatus: 14), isGRPC: false) == nil)
        #expect(unavailable.retriableFailure(response: head(200), isGRPC: true) == nil)
        #expect(rules([.deadlineExceeded]).covers(.perTryTimeout))
    }

    @Test func backoffIsJitteredUnderAnExponentialCeiling() {
        let rules = RetryRules(RetryPolicy(
            conditions: [.reset], backoff: RetryBackoff(base: .milliseconds(10), max: .milliseconds(35))))
        var random = FastRandom(seed: 7)
        for (retry, ceiling) in [(1, 10), (2, 20), (3, 35), (9, 35), (70, 35)] {
            let waits = (0..<200).map { _ in rules.backoff(retry: retry, random: &random).nanoseconds }
            #expect(waits.allSatisfy { $0 >= 0 && $0 <= Int64(ceiling) * 1_000_000 }, "retry \(retry)")
            // Spread over the range, not stuck at either end.
            #expect(waits.max()! > Int64(ceiling) * 1_000_000 / 2)
            #expect(waits.min()! < Int64(ceiling) * 1_000_000 / 2)
        }
    }
}

@Suite("Retry budget")
struct RetryBudgetTests {
    private let budget = RetryBudget()

    @Test func theMinimumAllowsRetriesWithoutRequests() {
        let config = RetryBudgetConfig(ratio: 0.2, minPerSecond: 2)
        // 2 per second over the ten-second window.
        #expect((0..<20).allSatisfy { _ in budget.tryWithdraw(config, second: 100) })
        #expect(!budget.tryWithdraw(config, second: 100))
        #expect(budget.exhaustionCount == 1)
    }

    @Test func requestsAddTheirRatio() {
        let config = RetryBudgetConfig(ratio: 0.5, minPerSecond: 0)
        for _ in 0..<10 {
            budget.recordRequest(second: 50)
        }
        #expect((0..<5).allSatisfy { _ in budget.tryWithdraw(config, second: 50) })
        #expect(!budget.tryWithdraw(config, second: 50))
    }

    @Test func countsOlderThanTheWindowNoLongerCount() {
        let config = RetryBudgetConfig(ratio: 1, minPerSecond: 0)
        for _ in 0..<4 {
            budget.recordRequest(second: 10)
        }
        #expect(budget.tryWithdraw(config, second: 15))
        // Second 20 reuses second 10's slot: its requests are gone.
        #expect(!budget.tryWithdraw(config, second: 20))
        budget.recordRequest(second: 20)
        // Second 15's retry still counts, so one request allows no second retry.
        #expect(!budget.tryWithdraw(config, second: 20))
        #expect(budget.tryWithdraw(config, second: 26))
    }
}
