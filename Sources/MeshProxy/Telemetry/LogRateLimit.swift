/// At most `perSecond` log lines a second for one kind of event on one
/// event loop; the lines not written are counted and reported with the next
/// one that is.
struct LogRateLimit {
    let perSecond: Int
    private var second: UInt64 = .max
    private var logged = 0
    private var notLogged = 0

    init(perSecond: Int) {
        self.perSecond = perSecond
    }

    /// nil: do not log this one. Otherwise log it, with the count of the
    /// ones not logged since the last line.
    mutating func admit(nowNanoseconds: UInt64) -> Int? {
        let now = nowNanoseconds / 1_000_000_000
        if now != second {
            second = now
            logged = 0
        }
        guard logged < perSecond else {
            notLogged += 1
            return nil
        }
        logged += 1
        defer { notLogged = 0 }
        return notLogged
    }
}
