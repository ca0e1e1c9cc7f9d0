import NIOHTTP1

/// What an exchange keeps for its span while the request runs (only with
/// `tracing` configured): the span's context, sent on to the endpoint, and
/// what the span will say about the request head.
struct TracedRequest {
    let context: ProxySpanContext
    let startNanoseconds: Int64
    let method: String
    let target: String
    let authority: String?

    init(head: HTTPRequestHead, recorder: SpanRecorder, random: inout FastRandom) {
        context = recorder.begin(IncomingTraceContext(head.headers), random: &random)
        startNanoseconds = WallClock.nanoseconds()
        method = head.method.rawValue
        target = head.uri
        authority = head.headers.first(name: "host")
    }
}
