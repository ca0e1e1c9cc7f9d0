import NIOCore

/// What one request keeps for retrying, when its route retries: the rules,
/// and a copy of every request part received so far to send again on a
/// retry (the replay buffer), until the body outgrows the rules'
/// `bufferLimitBytes` or a response head goes to the client.
struct RetryState {
    let rules: RetryRules
    /// nil once the request can no longer be sent again.
    private(set) var replay: CircularBuffer<ExchangeMachine.RequestPart>? = []
    private(set) var replayBodyBytes = 0

    init(rules: RetryRules) {
        self.rules = rules
    }

    /// Whether the request can still be sent again whole.
    var canReplay: Bool { replay != nil }

    /// Keeps `part` for a replay, or drops the buffer (and with it any
    /// retry) once the body passes the buffer limit.
    mutating func keep(_ part: ExchangeMachine.RequestPart) {
        guard replay != nil else { return }
        if case .body(let body) = part {
            replayBodyBytes += body.readableBytes
            if replayBodyBytes > rules.bufferLimitBytes {
                stopReplaying()
                return
            }
        }
        replay?.append(part)
    }

    /// A response head went to the client: the request is committed to its try.
    mutating func stopReplaying() {
        replay = nil
        replayBodyBytes = 0
    }

    /// Whether try number `tries`, failed with `failure`, may be followed by
    /// another as far as the request goes: the rules cover the failure,
    /// tries are left, the request can be sent again and the deadline has
    /// not passed. (The cluster's `RetryAdmission` has the last word.)
    func allowsRetry(after failure: TryFailure, tries: Int, deadline: NIODeadline?, now: NIODeadline) -> Bool {
        guard canReplay, tries <= rules.attempts, rules.covers(failure) else { return false }
        if let deadline, deadline <= now {
            return false
        }
        return true
    }

    /// A response head may be held back for a retry decision: another try is still possible.
    func holdsHead(tries: Int) -> Bool {
        canReplay && tries <= rules.attempts
    }
}
