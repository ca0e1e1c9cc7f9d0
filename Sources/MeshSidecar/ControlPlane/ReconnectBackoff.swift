/// The wait before a sidecar tries the control plane again: the cap doubles
/// from `base` to `max` with each failure in a row, and the wait is drawn
/// from the upper half of it, so that sidecars that lost a restarting
/// control plane together do not all come back at the same moment. A
/// snapshot that arrives resets it.
struct ReconnectBackoff: Sendable {
    static let base: Duration = .milliseconds(100)
    static let max: Duration = .seconds(5)

    private(set) var failures = 0

    /// The next wait; `unit` draws from 0..<1 (a parameter, so tests choose it).
    mutating func next(unit: () -> Double = { Double.random(in: 0..<1) }) -> Duration {
        let cap = Swift.min(Self.max, Self.base * (1 << Swift.min(failures, 16)))
        failures += 1
        return cap / 2 + (cap / 2) * unit()
    }

    mutating func reset() {
        failures = 0
    }
}
