import MeshConfig
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite("Trace context propagation")
struct TraceContextTests {
    private let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    private let span = "00f067aa0ba902b7"

    @Test func readsW3CTraceparent() {
        let incoming = IncomingTraceContext(["traceparent": "00-\(trace)-\(span)-01"])
        #expect(incoming.traceID?.hex == trace)
        #expect(incoming.parentSpanID == 0x00f0_67aa_0ba9_02b7)
        #expect(incoming.sampled == true && incoming.b3Form == .none)
    }

    @Test func refusesMalformedW3C() {
        for value in ["00-\(trace)-\(span)", "ff-\(trace)-\(span)-01", "00-\(String(repeating: "0", count: 32))-\(span)-01",
                      "00-\(trace)-0000000000000000-01", "00-\(trace)-\(span)-01-extra", "00-xyz-\(span)-01"] {
            #expect(IncomingTraceContext(["traceparent": value]).traceID == nil, "\(value)")
        }
        // A later version may add fields.
        #expect(IncomingTraceContext(["traceparent": "01-\(trace)-\(span)-00-more"]).sampled == false)
    }

    @Test func readsB3SingleAndMulti() {
        let single = IncomingTraceContext(["b3": "\(trace)-\(span)-1-05e3ac9a4f6e3b90"])
        #expect(single.traceID?.hex == trace && single.sampled == true && single.b3Form == .single)
        let short = IncomingTraceContext(["b3": "a3ce929d0e0e4736-\(span)"])
        #expect(short.traceID?.hex == "0000000000000000a3ce929d0e0e4736" && short.sampled == nil)
        let decisionOnly = IncomingTraceContext(["b3": "0"])
        #expect(decisionOnly.traceID == nil && decisionOnly.sampled == false)
        let multi = IncomingTraceContext(["X-B3-TraceId": trace, "X-B3-SpanId": span, "X-B3-Sampled": "0"])
        #expect(multi.traceID?.hex == trace && multi.sampled == false && multi.b3Form == .multi)
        let debug = IncomingTraceContext(["x-b3-flags": "1"])
        #expect(debug.sampled == true && debug.traceID == nil)
    }

    @Test func w3cWinsOverB3AndTheB3FormStillGoesBack() {
        let both = IncomingTraceContext(["b3": "0", "traceparent": "00-\(trace)-\(span)-01"])
        #expect(both.sampled == true && both.traceID?.hex == trace && both.b3Form == .single)
    }

    @Test func theEndpointGetsTheProxySpanAsParentInTheCallersForms() {
        var random = FastRandom(seed: 7)
        let incoming = IncomingTraceContext(["x-b3-traceid": trace, "x-b3-spanid": span, "x-b3-sampled": "1"])
        let context = ProxySpanContext(incoming, sampling: FaultShare(percent: 0), random: &random)
        var headers: HTTPHeaders = ["x-b3-traceid": trace, "x-b3-spanid": span, "x-b3-sampled": "1"]
        context.propagate(into: &headers)
        let own = HexDigits.format(context.spanID)
        #expect(headers.first(name: "traceparent") == "00-\(trace)-\(own)-01")
        #expect(headers.first(name: "x-b3-spanid") == own && headers.first(name: "x-b3-parentspanid") == span)
        #expect(headers["x-b3-spanid"].count == 1)
    }

    @Test func withoutADecisionTheRateDecides() {
        var random = FastRandom(seed: 1)
        let none = IncomingTraceContext([:])
        #expect(!ProxySpanContext(none, sampling: FaultShare(percent: 0), random: &random).sampled)
        let started = ProxySpanContext(none, sampling: FaultShare(percent: 100), random: &random)
        #expect(started.sampled && started.parentSpanID == nil && started.traceID.low != 0)
    }

    @Test func protobufVarints() {
        for value: UInt64 in [0, 1, 127, 128, 300, 16_383, 16_384, .max] {
            var buffer = ByteBuffer()
            buffer.writeProtobufVarint(value)
            #expect(buffer.readableBytes == ByteBuffer.protobufVarintSize(value), "\(value)")
        }
        var buffer = ByteBuffer()
        buffer.writeProtobufVarint(300)
        #expect(Array(buffer.readableBytesView) == [0xAC, 0x02])
    }

    /// KeyValue { key = "k", value = AnyValue { string_value = "v" } } at field 9, byte for byte.
    @Test func otlpAttributesOnTheWire() {
        var buffer = ByteBuffer()
        buffer.writeOTLPAttribute(9, key: "k", value: "v")
        #expect(Array(buffer.readableBytesView) == [0x4A, 0x08, 0x0A, 0x01, 0x6B, 0x12, 0x03, 0x0A, 0x01, 0x76])
        buffer.clear()
        buffer.writeOTLPAttribute(9, key: "n", value: 300)  // AnyValue { int_value = 300 }
        #expect(Array(buffer.readableBytesView) == [0x4A, 0x08, 0x0A, 0x01, 0x6E, 0x12, 0x03, 0x18, 0xAC, 0x02])
        buffer.clear()
        buffer.writeProtobufLengthDelimitedHeader(2, length: 300)
        #expect(Array(buffer.readableBytesView) == [0x12, 0xAC, 0x02])
    }

    /// A client-chosen value is cut to 512 bytes, never inside a character's
    /// bytes (the span must stay valid UTF-8), and the path leaves out the query.
    @Test func longValuesAreCutOnAScalarBoundary() {
        var random = FastRandom(seed: 2)
        let context = ProxySpanContext(IncomingTraceContext([:]), sampling: FaultShare(percent: 100), random: &random)
        func span(target: String) -> ProxySpan {
            ProxySpan(
                context: context, direction: .outbound, startNanoseconds: 1, endNanoseconds: 2, method: "POST",
                target: target, authority: nil, isHTTP2: true, isTLS: false, isGRPC: true, status: 200, grpcStatus: 0,
                listener: "l", cluster: nil, endpoint: nil, attempts: 1, requestID: "r", proxyError: nil, caller: nil,
                clientIP: nil)
        }
        let straddling = span(target: "/" + String(repeating: "a", count: 511) + "é?token=secret")
        #expect(straddling.path.hasSuffix("é") && !straddling.path.contains("?"))
        #expect(straddling.name == Substring(String(repeating: "a", count: 511)), "é's two bytes would pass 512")
        let fitting = span(target: "/" + String(repeating: "a", count: 510) + "é")
        #expect(fitting.name.utf8.count == 512 && fitting.name.hasSuffix("é"))
        #expect(span(target: "/pkg.Service/Method").name == "pkg.Service/Method")
    }
}
