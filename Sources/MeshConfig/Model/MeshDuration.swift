/// A span of time as written in config files: `250ms`, `2s`, `1m`, `1h`,
/// or combinations such as `1m30s`. Stored as whole nanoseconds.
public struct MeshDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    public static func milliseconds(_ value: Int64) -> MeshDuration { MeshDuration(nanoseconds: value * 1_000_000) }
    public static func seconds(_ value: Int64) -> MeshDuration { MeshDuration(nanoseconds: value * 1_000_000_000) }

    public static func < (lhs: MeshDuration, rhs: MeshDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The canonical config spelling, largest unit first, which reads back to
    /// the same value: e.g. `1m30s`, `1s500ms`, `250ms`. See `DurationSyntax`.
    public var description: String { DurationSyntax.format(self) }
}
