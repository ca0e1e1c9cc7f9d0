import NIOCore

/// Something whose writes can wait for the end of the loop iteration.
package protocol BatchedFlushTarget: AnyObject {
    func flushBatched()
}

/// Flushes once per event-loop iteration instead of once per request: every
/// response or request written while the loop handles one batch of socket
/// events goes out in one write per connection. The flush runs as a task,
/// which NIO runs right after the iteration's I/O, so nothing waits longer
/// than the iteration that produced it.
package final class FlushBatch {
    private let eventLoop: EventLoop
    private var pending: [any BatchedFlushTarget] = []

    package init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Callers schedule a target at most once per batch (they keep a flag).
    package func schedule(_ target: any BatchedFlushTarget) {
        if pending.isEmpty {
            eventLoop.assumeIsolated().execute { self.run() }
        }
        pending.append(target)
    }

    private func run() {
        var index = 0
        // Flushing can schedule more (a flush that completes a write may start
        // another exchange's work); those join this pass.
        while index < pending.count {
            pending[index].flushBatched()
            index += 1
        }
        pending.removeAll(keepingCapacity: true)
    }
}
