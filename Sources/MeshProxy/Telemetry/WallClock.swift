#if canImport(Glibc)
import Glibc
#endif

/// The time of day for access logs and spans; durations use the monotonic clock.
enum WallClock {
    /// Nanoseconds since the Unix epoch.
    static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
