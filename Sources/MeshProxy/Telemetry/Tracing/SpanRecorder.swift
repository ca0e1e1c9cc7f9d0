import NIOCore

/// One event loop's side of tracing: the sampling share, and the spans
/// encoded since the last hand-over to the `OTLPExporter`. Spans go over in
/// batches, every `flushInterval` or once `maxBatchSpans` gathered, so a busy
/// loop pays one thread hop per batch, never one per request.
final class SpanRecorder {
    let exporter: OTLPExporter
    private let eventLoop: EventLoop
    private var spans = ByteBuffer()
    private var count = 0
    private var scratch = ByteBuffer()
    private var flushTask: Scheduled<Void>?
    /// As the OpenTelemetry SDKs' batch span processor.
    static let maxBatchSpans = 512
    /// And at most this many bytes, so that an export stays within receivers' body limits.
    static let maxBatchBytes = 1 << 20
    /// How long a span may wait for its batch.
    static let flushInterval = TimeAmount.milliseconds(500)

    init(exporter: OTLPExporter, eventLoop: EventLoop) {
        self.exporter = exporter
        self.eventLoop = eventLoop
    }

    /// The proxy's span for a request starting now, continuing the caller's trace if it sent one.
    func begin(_ incoming: IncomingTraceContext, random: inout FastRandom) -> ProxySpanContext {
        ProxySpanContext(incoming, sampling: exporter.config.sampling, random: &random)
    }

    func record(_ span: ProxySpan) {
        span.encode(into: &spans, scratch: &scratch)
        count += 1
        if count >= Self.maxBatchSpans || spans.readableBytes >= Self.maxBatchBytes {
            flush()
        } else if flushTask == nil {
            flushTask = eventLoop.assumeIsolated().scheduleTask(in: Self.flushInterval) { [self] in
                flushTask = nil
                flush()
            }
        }
    }

    /// Hands the spans gathered so far to the exporter.
    func flush() {
        flushTask?.cancel()
        flushTask = nil
        guard count > 0 else { return }
        exporter.export(spans, count: count)
        spans = ByteBuffer()
        count = 0
    }
}
