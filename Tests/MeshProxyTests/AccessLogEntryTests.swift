import Foundation
import NIOCore
import Testing

@testable import MeshProxy

@Suite struct AccessLogEntryTests {
    private func entry() -> AccessLogEntry {
        AccessLogEntry(
            startNanoseconds: 1_796_161_205_123_456_789, durationNanoseconds: 2_345_678, listener: "ingress",
            httpProtocol: "HTTP/2", method: "POST", authority: "user:50051", path: "/a\"b\\c\n\u{1}",
            status: 200, grpcStatus: 0, cluster: "user", endpoint: "127.0.0.1:50051", attempts: 1,
            bytesReceived: 12, bytesSent: 34, caller: nil, traceID: "4bf92f3577b34da6a3ce929d0e0e4736",
            requestID: "r-1", proxyError: nil, flags: [.faultDelayed, .retried])
    }

    /// One line of JSON, every field present, strings escaped so that a hostile path cannot break the line.
    @Test func encodesOneLineOfJSON() throws {
        var buffer = ByteBuffer()
        var clock = AccessLogClock()
        entry().encode(into: &buffer, clock: &clock)
        let line = String(buffer: buffer)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["start_time"] as? String == "2026-12-01T21:40:05.123Z")
        #expect(object["duration_ms"] as? Double == 2.345)
        #expect(object["path"] as? String == "/a\"b\\c\n\u{1}")
        #expect(object["grpc_status"] as? Int == 0)
        #expect(object["caller"] is NSNull && object["proxy_error"] is NSNull)
        #expect(object["flags"] as? [String] == ["fault_delayed", "retried"])
        #expect(object.count == 19)
    }

    @Test func numbersAreWrittenDigitByDigit() {
        var buffer = ByteBuffer()
        for (value, digits) in [(0, 1), (7, 3), (1234, 1), (-42, 1), (Int.max, 1)] {
            AccessLogEntry.writeDecimal(value, minimumDigits: digits, into: &buffer)
            buffer.writeString(" ")
        }
        #expect(String(buffer: buffer) == "0 007 1234 -42 \(Int.max) ")
    }

    @Test func traceIDFromW3COrB3() {
        #expect(AccessLogEntry.traceID(
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", b3TraceID: nil, b3: nil)
            == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(AccessLogEntry.traceID(traceparent: nil, b3TraceID: "a3ce929d0e0e4736", b3: nil) == "a3ce929d0e0e4736")
        #expect(AccessLogEntry.traceID(traceparent: nil, b3TraceID: nil, b3: "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
            == "80f198ee56343ba864fe8b2a57d3eff7")
        #expect(AccessLogEntry.traceID(traceparent: "garbage", b3TraceID: nil, b3: nil) == nil)
    }
}
