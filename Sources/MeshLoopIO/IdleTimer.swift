import NIOCore

/// The idle timeout of one connection, with one timer per idle period rather
/// than one per request: activity only records the time, and when the timer
/// fires it closes the connection if it was idle the whole period, or arms
/// itself again for the rest of it.
package final class IdleTimer {
    private let timeout: TimeAmount
    /// After `close`, a new period starts (for a timer that ends what is in
    /// progress rather than the connection).
    private let keepsWatching: Bool
    private var lastActive = NIODeadline.now()
    private var scheduled: Scheduled<Void>?
    private var eventLoop: EventLoop?
    private var isIdle: () -> Bool = { false }
    private var close: () -> Void = {}

    package init(timeout: TimeAmount, keepsWatching: Bool = false) {
        self.timeout = timeout
        self.keepsWatching = keepsWatching
    }

    /// Starts watching. Time with `isIdle` false counts as activity (a
    /// request's own deadline is its route timeout); `close` runs once,
    /// unless the timer `keepsWatching`.
    package func start(on eventLoop: EventLoop, isIdle: @escaping () -> Bool, close: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.isIdle = isIdle
        self.close = close
        touch()
        arm()
    }

    /// The connection did something: the idle period starts again.
    package func touch() {
        lastActive = .now()
    }

    /// The connection is gone: the timer and the closures, which hold its handler, go too.
    package func stop() {
        scheduled?.cancel()
        scheduled = nil
        eventLoop = nil
        isIdle = { false }
        close = {}
    }

    private func arm() {
        guard let eventLoop else { return }
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: lastActive + timeout) { [weak self] in
            self?.fire()
        }
    }

    private func fire() {
        scheduled = nil
        if !isIdle() {
            touch()
        } else if NIODeadline.now() >= lastActive + timeout {
            close()
            guard keepsWatching, eventLoop != nil else { return }
            touch()
        }
        arm()
    }
}
