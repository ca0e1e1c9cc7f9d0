/// A request-duration histogram with fixed buckets, counted in nanoseconds.
struct DurationHistogram: Sendable {
    /// Upper bounds in seconds, as exposed in the `le` label.
    static let boundsSeconds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]
    private static let boundsNanoseconds: [Int64] = boundsSeconds.map { Int64($0 * 1e9) }

    /// Non-cumulative counts per bucket; the last slot is +Inf.
    private(set) var counts = [UInt64](repeating: 0, count: DurationHistogram.boundsSeconds.count + 1)
    private(set) var sumNanoseconds: Int64 = 0

    var count: UInt64 { counts.reduce(0, +) }

    mutating func observe(nanoseconds: Int64) {
        sumNanoseconds &+= nanoseconds
        var slot = 0
        while slot < Self.boundsNanoseconds.count && nanoseconds > Self.boundsNanoseconds[slot] {
            slot += 1
        }
        counts[slot] &+= 1
    }

    mutating func merge(_ other: DurationHistogram) {
        for slot in counts.indices {
            counts[slot] &+= other.counts[slot]
        }
        sumNanoseconds &+= other.sumNanoseconds
    }
}
