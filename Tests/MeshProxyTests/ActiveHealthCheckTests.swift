import NIOCore
import Testing

@testable import MeshProxy

@Suite("Active health check tally")
struct ActiveCheckTallyTests {
    @Test func aNewEndpointIsDecidedByItsFirstProbe() {
        var passing = ActiveCheckTally()
        #expect(passing.record(passed: true, healthyThreshold: 3, unhealthyThreshold: 3) == .passing)
        var failing = ActiveCheckTally()
        #expect(failing.record(passed: false, healthyThreshold: 3, unhealthyThreshold: 3) == .failing)
    }

    @Test func thresholdsCountRunsInARow() {
        var tally = ActiveCheckTally()
        _ = tally.record(passed: true, healthyThreshold: 2, unhealthyThreshold: 2)
        let runs: [(Bool, EndpointHealth.ActiveCheck?)] = [
            (false, nil), (true, nil), (false, nil), (false, .failing),  // a pass in between starts over
            (true, nil), (true, .passing),
        ]
        for (passed, expected) in runs {
            #expect(tally.record(passed: passed, healthyThreshold: 2, unhealthyThreshold: 2) == expected)
        }
    }
}

@Suite("gRPC health messages")
struct GRPCHealthMessagesTests {
    private let allocator = ByteBufferAllocator()

    @Test func theRequestNamesTheServiceInField1() {
        let framed = GRPCHealthMessages.checkRequest(service: "e2e.Echo", allocator: allocator)
        #expect(Array(framed.readableBytesView) == [0, 0, 0, 0, 10, 0x0A, 8] + Array("e2e.Echo".utf8))
        let whole = GRPCHealthMessages.checkRequest(service: "", allocator: allocator)
        #expect(Array(whole.readableBytesView) == [0, 0, 0, 0, 0])
    }

    @Test(arguments: [
        ([0, 0, 0, 0, 2, 0x08, 1], true),  // SERVING
        ([0, 0, 0, 0, 2, 0x08, 2], false),  // NOT_SERVING
        ([0, 0, 0, 0, 0], false),  // UNKNOWN (the default, omitted)
        ([0, 0, 0, 0, 5, 0x12, 1, 0x41, 0x08, 1], true),  // an unknown field first
        ([0, 0, 0, 0, 9, 0x08, 1], false),  // truncated
        ([1, 0, 0, 0, 2, 0x08, 1], false),  // compressed: not what was asked for
    ] as [([UInt8], Bool)])
    func responsesAreReadForTheirStatus(_ bytes: [UInt8], _ serving: Bool) {
        #expect(GRPCHealthMessages.isServing(allocator.buffer(bytes: bytes)) == serving)
    }
}
