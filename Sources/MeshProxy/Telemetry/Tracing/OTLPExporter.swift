import AsyncHTTPClient
import Logging
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends spans to an OTLP HTTP receiver as `ExportTraceServiceRequest`
/// protobuf bodies (OTLP/HTTP, `application/x-protobuf`). It runs on a
/// thread of its own: loops hand batches over (`export`) and go on, so a
/// slow or absent receiver never holds a request. One export is in flight
/// at a time and at most `maxQueuedBatches` wait; past that, batches are
/// dropped and counted, as the OpenTelemetry SDKs do, rather than grow memory.
///
/// `@unchecked Sendable`: `queue` and `sending` are touched only on `loop`;
/// the counts are behind a lock, taken per batch and per scrape.
final class OTLPExporter: @unchecked Sendable {
    let config: TracingConfig
    private let group: MultiThreadedEventLoopGroup
    private let loop: EventLoop
    private let client: HTTPClient
    private let logger: Logger
    private var queue = CircularBuffer<(spans: ByteBuffer, count: Int)>()
    private var sending = false
    /// Completed when the queue empties after `shutdown` began.
    private var drained: EventLoopPromise<Void>?
    private let counts = NIOLockedValueBox(Counts())
    private var failureLogLimit = LogRateLimit(perSecond: 1)
    static let maxQueuedBatches = 16
    static let exportTimeout = TimeAmount.seconds(10)

    struct Counts: Sendable {
        /// Spans the receiver accepted.
        var exported: UInt64 = 0
        /// Spans dropped: the queue was full, or the receiver failed or refused them.
        var dropped: UInt64 = 0
    }

    init(_ config: TracingConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        var settings = HTTPClient.Configuration()
        settings.timeout = .init(connect: .seconds(2), read: Self.exportTimeout)
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: settings)
    }

    var snapshot: Counts { counts.withLockedValue { $0 } }

    /// Queues `count` spans encoded as `ScopeSpans.spans` entries.
    func export(_ spans: ByteBuffer, count: Int) {
        loop.execute { [self] in
            guard queue.count < Self.maxQueuedBatches else {
                counts.withLockedValue { $0.dropped += UInt64(count) }
                return
            }
            queue.append((spans, count))
            sendNext()
        }
    }

    private func sendNext() {
        guard !sending else { return }
        guard let batch = queue.popFirst() else {
            drained?.succeed()
            drained = nil
            return
        }
        sending = true
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: config.tracesURL, method: .POST,
                headers: ["content-type": "application/x-protobuf"],
                body: .byteBuffer(requestBody(batch.spans)))
        } catch {
            finished(batch.count, failure: "\(error)")
            return
        }
        client.execute(request: request, eventLoop: .delegate(on: loop), deadline: .now() + Self.exportTimeout)
            .hop(to: loop)
            .whenComplete { [self] result in
                switch result {
                case .success(let response) where (200..<300).contains(response.status.code):
                    finished(batch.count, failure: nil)
                case .success(let response):
                    finished(batch.count, failure: "the receiver answered \(response.status.code)")
                case .failure(let error):
                    finished(batch.count, failure: "\(error)")
                }
            }
    }

    private func finished(_ count: Int, failure: String?) {
        sending = false
        counts.withLockedValue {
            if failure == nil { $0.exported += UInt64(count) } else { $0.dropped += UInt64(count) }
        }
        if let failure, let notLogged = failureLogLimit.admit(nowNanoseconds: NIODeadline.now().uptimeNanoseconds) {
            logger.warning("spans not exported", metadata: [
                "endpoint": "\(config.tracesURL)", "spans": "\(count)", "reason": "\(failure)",
                "failuresNotLogged": "\(notLogged)",
            ])
        }
        sendNext()
    }

    /// `ExportTraceServiceRequest { resource_spans = 1 }` around the spans:
    /// one resource (the service), one scope (swiftmesh). The sizes of the
    /// enclosing messages are worked out first, so the spans are copied once.
    private func requestBody(_ spans: ByteBuffer) -> ByteBuffer {
        var resource = ByteBuffer()
        resource.writeOTLPAttribute(1, key: "service.name", value: config.serviceName)  // Resource.attributes
        var scope = ByteBuffer()
        scope.writeProtobufStringField(1, "swiftmesh")  // InstrumentationScope.name
        let scopeSpansSize = ByteBuffer.protobufFieldSize(scope.readableBytes) + spans.readableBytes
        let resourceSpansSize = ByteBuffer.protobufFieldSize(resource.readableBytes)
            + ByteBuffer.protobufFieldSize(scopeSpansSize)
        var body = ByteBuffer()
        body.reserveCapacity(ByteBuffer.protobufFieldSize(resourceSpansSize))
        body.writeProtobufLengthDelimitedHeader(1, length: resourceSpansSize)  // ExportTraceServiceRequest.resource_spans
        body.writeProtobufMessageField(1, resource)  // ResourceSpans.resource
        body.writeProtobufLengthDelimitedHeader(2, length: scopeSpansSize)  // ResourceSpans.scope_spans
        body.writeProtobufMessageField(1, scope)  // ScopeSpans.scope
        body.writeImmutableBuffer(spans)  // ScopeSpans.spans, each already keyed
        return body
    }

    /// Sends what was handed over (waiting at most `timeout`), then stops the client and its thread.
    func shutdown(timeout: TimeAmount = .seconds(5)) async {
        let drained = loop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            if !sending && queue.isEmpty { return loop.makeSucceededVoidFuture() }
            let promise = loop.makePromise(of: Void.self)
            self.drained = promise
            loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                self.drained?.succeed()
                self.drained = nil
            }
            return promise.futureResult
        }
        try? await drained.get()
        try? await client.shutdown()
        try? await group.shutdownGracefully()
    }
}
