import Testing
@testable import MeshConfig

@Suite("Route fault injection")
struct FaultConfigTests {
    private func decodedFault(_ fault: String) throws -> FaultConfig? {
        let config = try ConfigLoader.decode(yaml: Fixture.route("cluster: user, fault: \(fault)"))
        return config.listeners[0].routes[0].fault
    }

    @Test func delayAndAbortWithShares() throws {
        let fault = try decodedFault("{ delay: { fixed: 100ms, percent: 10 }, abort: { httpStatus: 503, percent: 0.5 } }")
        #expect(fault?.delay == FaultDelay(fixed: .milliseconds(100), share: FaultShare(percent: 10)))
        #expect(fault?.delay?.share.millionths == 100_000)
        #expect(fault?.abort == FaultAbort(answer: .httpStatus(503), share: FaultShare(percent: 0.5)))
        #expect(fault?.abort?.share.millionths == 5_000)
    }

    @Test func abortWithAGRPCStatus() throws {
        #expect(try decodedFault("{ abort: { grpcStatus: 14, percent: 100 } }")?.abort?.answer == .grpcStatus(14))
    }

    @Test(arguments: [
        ("{}", "listeners[0].routes[0].fault", "has neither delay nor abort"),
        ("{ abort: { percent: 5 } }", "listeners[0].routes[0].fault.abort", "has neither httpStatus nor grpcStatus"),
        ("{ abort: { httpStatus: 503, grpcStatus: 14, percent: 5 } }", "listeners[0].routes[0].fault.abort", "has both"),
        ("{ abort: { httpStatus: 700, percent: 5 } }", "listeners[0].routes[0].fault.abort.httpStatus", "200-599"),
        ("{ abort: { grpcStatus: 0, percent: 5 } }", "listeners[0].routes[0].fault.abort.grpcStatus", "1-16"),
        ("{ abort: { httpStatus: 503, percent: 150 } }", "listeners[0].routes[0].fault.abort.percent", "0 to 100"),
        ("{ abort: { httpStatus: 503 } }", "listeners[0].routes[0].fault.abort.percent", "percent: 5"),
        ("{ delay: { percent: 5 } }", "listeners[0].routes[0].fault.delay.fixed", "fixed: 100ms"),
        ("{ delay: { fixed: 0s, percent: 5 } }", "listeners[0].routes[0].fault.delay.fixed", "above zero"),
        ("{ delay: { fixed: 1s, percent: lots } }", "listeners[0].routes[0].fault.delay.percent", "0 to 100"),
    ])
    func mistakesNameTheField(_ fault: String, _ path: String, _ fragment: String) {
        let issue = onlyIssue(Fixture.route("cluster: user, fault: \(fault)"))
        #expect(issue?.path == path)
        #expect(issue?.message.contains(fragment) == true, "\(issue?.message ?? "no single issue")")
    }
}
