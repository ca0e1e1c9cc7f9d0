import NIOCore

/// The requests one pool keeps waiting for a connection or a stream, oldest
/// first. Each counts as one of the cluster's pending requests (the
/// breaker's `maxPendingRequests`) from `enqueue` until it leaves the queue,
/// whichever way it leaves: served, given up by its request, or failed.
struct PendingRequests {
    private let breaker: any PoolBreaker
    private var queue = CircularBuffer<any UpstreamRequest>()

    init(breaker: any PoolBreaker) {
        self.breaker = breaker
    }

    var count: Int { queue.count }
    var isEmpty: Bool { queue.isEmpty }

    /// Queues `request` as the cluster's next pending request; false (and
    /// the request failed with `pendingOverflow`) when the cluster already
    /// has `maxPendingRequests` waiting.
    mutating func enqueue(_ request: any UpstreamRequest) -> Bool {
        guard let pending = breaker.tryAddPending() else {
            request.failed(.pendingOverflow)
            return false
        }
        queue.append(request)
        request.queued(pendingRequests: pending)
        return true
    }

    /// The oldest request still waiting; those that stopped waiting (timed
    /// out, lost their client) leave on the way.
    mutating func next() -> (any UpstreamRequest)? {
        while let request = queue.popFirst() {
            breaker.pendingEnded()
            if request.isWaitingForConnection {
                return request
            }
        }
        return nil
    }

    /// `request` gave up waiting.
    mutating func remove(_ request: any UpstreamRequest) {
        if let index = queue.firstIndex(where: { $0 === request }) {
            queue.remove(at: index)
            breaker.pendingEnded()
        }
    }

    /// Every request in the queue, which is left empty.
    mutating func removeAll() -> CircularBuffer<any UpstreamRequest> {
        let all = queue
        queue.removeAll()
        for _ in all {
            breaker.pendingEnded()
        }
        return all
    }
}
