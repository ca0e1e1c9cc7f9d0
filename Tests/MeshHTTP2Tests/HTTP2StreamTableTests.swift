import MeshLoopIO
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import MeshHTTP2

/// The stream table both HTTP/2 connection handlers use: which frames go
/// to which stream, and what leaving the table tells a stream.
@Suite struct HTTP2StreamTableTests {
    /// A stream owner that writes down what the table told it.
    final class Owner: HTTP2StreamOwner {
        let stream: HTTP2Stream
        var heard: [String] = []
        /// What the stream does when told the peer reset it.
        var onReset: (() -> Void)?

        init(_ id: HTTP2StreamID, outbox: HTTP2FrameOutbox) {
            stream = HTTP2Stream(id: id, outbox: outbox, receiveWindowSize: 65535)
        }

        func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) { heard.append("headers") }
        func receivedData(_ data: HTTP2Frame.FramePayload.Data, flowControlledLength: Int) {
            heard.append("data \(flowControlledLength)")
        }
        func receivedReset(_ code: HTTP2ErrorCode) {
            heard.append("reset \(code.networkCode)")
            onReset?()
        }
        func closed() { heard.append("closed") }
        func connectionBecameWritable() { heard.append("writable") }
        func streamBecameWritable() {}
        func streamReadComplete() { heard.append("read complete") }
    }

    private let outbox = HTTP2FrameOutbox(batch: FlushBatch(eventLoop: EmbeddedEventLoop()))

    private static func data(_ id: HTTP2StreamID, _ bytes: Int) -> HTTP2Frame {
        HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: bytes)))))
    }

    @Test func framesGoToTheirStreamAndEachStreamFlushesOncePerRead() {
        let table = HTTP2StreamTable(outbox: outbox)
        let one = Owner(1, outbox: outbox)
        let three = Owner(3, outbox: outbox)
        table.insert(one)
        table.insert(three)
        let arrivals = [
            table.receive(Self.data(1, 10)), table.receive(Self.data(1, 5)), table.receive(Self.data(3, 7)),
            table.receive(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: [:], endStream: true)))),
        ]
        #expect(arrivals.allSatisfy { $0.isDelivered })
        table.readComplete()
        #expect(one.heard == ["data 10", "data 5", "read complete"])
        #expect(three.heard == ["data 7", "headers", "read complete"])
    }

    @Test func headersForAStreamNotInTheTableAreTheHandlersToOpen() {
        let table = HTTP2StreamTable(outbox: outbox)
        guard case .newStream = table.receive(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: [:])))) else {
            Issue.record("HEADERS for a new stream were not handed to the handler")
            return
        }
        // DATA for a stream not in the table is dropped (its credit goes back).
        let dropped = table.receive(Self.data(5, 3))
        #expect(dropped.isDelivered)
        guard case .connectionFrame = table.receive(HTTP2Frame(streamID: 0, payload: .ping(.init(), ack: false))) else {
            Issue.record("a connection frame was not left to the handler")
            return
        }
    }

    @Test func aGoAwayRefusesOnlyTheStreamsAboveItsLastStream() {
        let table = HTTP2StreamTable(outbox: outbox)
        let owners = [1, 3, 5].map { Owner(HTTP2StreamID($0), outbox: outbox) }
        for owner in owners {
            table.insert(owner)
        }
        table.refuseAll(above: 3)
        #expect(owners.map(\.heard) == [[], [], ["reset 7"]])
        #expect(table.count == 2)
    }

    /// A request an endpoint refused is resent at once, on the same
    /// connection when it has room: the table is reached again from within
    /// the stream's callback.
    @Test func aStreamToldItLeftMayOpenAnotherAtOnce() {
        let table = HTTP2StreamTable(outbox: outbox)
        let refused = Owner(1, outbox: outbox)
        let resent = Owner(3, outbox: outbox)
        refused.onReset = {
            #expect(table.count == 0)
            table.insert(resent)
        }
        table.insert(refused)
        guard case .streamReset = table.receive(HTTP2Frame(streamID: 1, payload: .rstStream(.refusedStream))) else {
            Issue.record("the refusal did not take the stream out")
            return
        }
        #expect(table[3] === resent)
        refused.onReset = nil
    }

    @Test func aStreamLeavesTheTableOnceWhetherResetClosedOrWithTheConnection() {
        let table = HTTP2StreamTable(outbox: outbox)
        let one = Owner(1, outbox: outbox)
        let three = Owner(3, outbox: outbox)
        let five = Owner(5, outbox: outbox)
        for owner in [one, three, five] {
            table.insert(owner)
        }
        guard case .streamReset = table.receive(HTTP2Frame(streamID: 1, payload: .rstStream(.refusedStream))) else {
            Issue.record("the peer's reset did not take the stream out")
            return
        }
        let secondReset = table.receive(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
        #expect(secondReset.isDelivered, "a second reset finds nothing")
        let closedOnce = table.closed(3)
        let closedTwice = table.closed(3)
        #expect(closedOnce && !closedTwice)
        table.connectionBecameWritable()
        table.closeAll()
        #expect(table.isEmpty)
        #expect(one.heard == ["reset 7"])
        #expect(three.heard == ["closed"])
        #expect(five.heard == ["writable", "closed"])
    }
}

extension HTTP2StreamTable.Arrival {
    fileprivate var isDelivered: Bool {
        if case .delivered = self { true } else { false }
    }
}
