import MeshConfig
import MeshHTTP1
import NIOHTTP1

/// The trace context a request arrived with, read from W3C Trace Context
/// (`traceparent`, `tracestate`) or B3 (the single `b3` header, or the
/// `x-b3-*` headers), in that order of preference, in one pass over the fields.
struct IncomingTraceContext {
    /// Which B3 form the caller used, so the endpoint gets the same one back.
    enum B3Form {
        case none, single, multi
    }

    var traceID: TraceID?
    /// The caller's span: the parent of the proxy's.
    var parentSpanID: UInt64?
    /// The caller's sampling decision; nil when it made none.
    var sampled: Bool?
    var b3Form = B3Form.none

    init(_ headers: HTTPHeaders) {
        var traceparent: String?
        var b3: String?
        var b3TraceID: String?
        var b3SpanID: String?
        var b3Sampled: String?
        var b3Debug = false
        for (name, value) in headers {
            switch name.utf8.count {
            case 2 where name.equalsIgnoringASCIICase("b3"): b3 = value
            case 11 where name.equalsIgnoringASCIICase("traceparent"): traceparent = value
            case 11 where name.equalsIgnoringASCIICase("x-b3-spanid"): b3SpanID = value
            case 12 where name.equalsIgnoringASCIICase("x-b3-traceid"): b3TraceID = value
            case 12 where name.equalsIgnoringASCIICase("x-b3-sampled"): b3Sampled = value
            case 10 where name.equalsIgnoringASCIICase("x-b3-flags"): b3Debug = value == "1"
            default: break
            }
        }
        // The caller's B3 form goes back to the endpoint whichever header gave the context.
        let hasB3Multi = b3TraceID != nil || b3Sampled != nil || b3Debug
        b3Form = b3 != nil ? .single : hasB3Multi ? .multi : .none
        if let traceparent, readW3C(traceparent) { return }
        if let b3, readB3Single(b3) { return }
        if hasB3Multi {
            if let b3TraceID, let b3SpanID, let trace = TraceID(hex: Substring(b3TraceID)),
               let span = SpanID.parse(Substring(b3SpanID)) {
                traceID = trace
                parentSpanID = span
            }
            sampled = b3Debug ? true : b3Sampled.flatMap(Self.b3Decision)
        }
    }

    /// `00-<trace id>-<parent id>-<flags>`; later versions may append
    /// fields, which are ignored (W3C Trace Context section 3.2.4).
    private mutating func readW3C(_ value: String) -> Bool {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].utf8.count == 2, parts[0] != "ff", HexDigits.parse(parts[0]) != nil,
              parts[0] != "00" || parts.count == 4,
              parts[1].utf8.count == 32, let trace = TraceID(hex: parts[1]),
              let parent = SpanID.parse(parts[2]),
              parts[3].utf8.count == 2, let flags = HexDigits.parse(parts[3]) else { return false }
        traceID = trace
        parentSpanID = parent
        sampled = flags & 1 == 1
        return true
    }

    /// `<trace id>-<span id>[-<sampling>[-<parent span id>]]`, or the sampling alone.
    private mutating func readB3Single(_ value: String) -> Bool {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 1 {
            sampled = Self.b3Decision(String(parts[0]))
            return sampled != nil
        }
        guard parts.count <= 4, let trace = TraceID(hex: parts[0]), let span = SpanID.parse(parts[1]) else { return false }
        traceID = trace
        parentSpanID = span
        if parts.count >= 3 {
            sampled = Self.b3Decision(String(parts[2]))
        }
        return true
    }

    /// `1`/`true`/`d` (debug) sample, `0`/`false` do not.
    private static func b3Decision(_ value: String) -> Bool? {
        switch value {
        case "1", "d", "true": true
        case "0", "false": false
        default: nil
        }
    }
}

/// The proxy's span: the trace it belongs to, its id and parent, and
/// whether it is sampled. Its context goes to the endpoint in place of the
/// caller's, so the endpoint's spans become the proxy span's children.
struct ProxySpanContext {
    let traceID: TraceID
    let spanID: UInt64
    let parentSpanID: UInt64?
    let sampled: Bool
    let b3Form: IncomingTraceContext.B3Form

    /// A span continuing the caller's trace, or starting one; the caller's
    /// sampling decision holds, else `sampling` draws one.
    init(_ incoming: IncomingTraceContext, sampling: FaultShare, random: inout FastRandom) {
        traceID = incoming.traceID ?? TraceID.random(using: &random)
        spanID = SpanID.random(using: &random)
        parentSpanID = incoming.traceID == nil ? nil : incoming.parentSpanID
        sampled = incoming.sampled ?? sampling.draw(using: &random)
        b3Form = incoming.b3Form
    }

    /// Sets `traceparent` (W3C Trace Context is always sent) and the B3
    /// form the caller used; `tracestate` goes on as the caller sent it.
    func propagate(into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: "traceparent", value: traceparent)
        guard b3Form != .none else { return }
        let trace = traceID.hex
        let span = HexDigits.format(spanID)
        switch b3Form {
        case .none:
            break
        case .single:
            let parent = parentSpanID.map { "-" + HexDigits.format($0) } ?? ""
            headers.replaceOrAdd(name: "b3", value: "\(trace)-\(span)-\(sampled ? "1" : "0")\(parent)")
        case .multi:
            headers.replaceOrAdd(name: "x-b3-traceid", value: trace)
            headers.replaceOrAdd(name: "x-b3-spanid", value: span)
            if let parentSpanID {
                headers.replaceOrAdd(name: "x-b3-parentspanid", value: HexDigits.format(parentSpanID))
            } else {
                headers.remove(name: "x-b3-parentspanid")
            }
            headers.replaceOrAdd(name: "x-b3-sampled", value: sampled ? "1" : "0")
        }
    }

    /// `00-<trace id>-<span id>-<flags>`, built in one allocation: it is sent with every request.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { space in
            let zero = UInt8(ascii: "0"), dash = UInt8(ascii: "-")
            (space[0], space[1], space[2], space[35], space[52], space[53]) = (zero, zero, dash, dash, dash, zero)
            HexDigits.write(traceID.high, into: space, at: 3)
            HexDigits.write(traceID.low, into: space, at: 19)
            HexDigits.write(spanID, into: space, at: 36)
            space[54] = UInt8(ascii: sampled ? "1" : "0")
            return 55
        }
    }
}
