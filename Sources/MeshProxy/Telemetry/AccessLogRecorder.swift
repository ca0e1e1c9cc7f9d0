import MeshConfig
import NIOCore

/// One event loop's side of the access log: which requests to log (the
/// config's sample), and the lines gathered since the last hand-over to
/// the `AccessLogWriter`. Lines go over in batches, every `flushInterval`
/// or once `maxBatchBytes` gathered, so a busy loop pays one hop and one
/// write for hundreds of lines.
final class AccessLogRecorder {
    let writer: AccessLogWriter
    private let eventLoop: EventLoop
    private var lines = ByteBuffer()
    private var clock = AccessLogClock()
    private var flushTask: Scheduled<Void>?
    static let maxBatchBytes = 64 * 1024
    /// How long a line may wait for its batch.
    static let flushInterval = TimeAmount.milliseconds(100)

    init(writer: AccessLogWriter, eventLoop: EventLoop) {
        self.writer = writer
        self.eventLoop = eventLoop
    }

    /// Whether the request starting now is logged.
    func samples(using random: inout FastRandom) -> Bool {
        writer.config.sample.draw(using: &random)
    }

    func record(_ entry: AccessLogEntry) {
        if lines.capacity == 0 {
            lines.reserveCapacity(Self.maxBatchBytes + 4096)
        }
        entry.encode(into: &lines, clock: &clock)
        if lines.readableBytes >= Self.maxBatchBytes {
            flush()
        } else if flushTask == nil {
            flushTask = eventLoop.assumeIsolated().scheduleTask(in: Self.flushInterval) { [self] in
                flushTask = nil
                flush()
            }
        }
    }

    /// Hands the lines gathered so far to the writer.
    func flush() {
        flushTask?.cancel()
        flushTask = nil
        guard lines.readableBytes > 0 else { return }
        writer.write(lines)
        lines = ByteBuffer()
    }
}
