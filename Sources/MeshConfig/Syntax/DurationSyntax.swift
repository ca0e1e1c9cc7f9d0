/// The config spelling of a span of time: one or more `<digits><unit>` parts,
/// largest unit first and each unit at most once, e.g. `250ms`, `2s`, `1m30s`.
/// Units: `h`, `m`, `s`, `ms`, `us`, `ns`. There is no sign and no fraction
/// (`1.5s` is written `1s500ms`), so every spelling means exactly one value.
public enum DurationSyntax {
    /// Largest first: the order in which parts must appear, and the order
    /// `format` emits them in.
    private static let units: [(suffix: Substring, nanoseconds: Int64)] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ]

    /// The duration `text` spells, or nil when it is not in the syntax above
    /// or does not fit in 64-bit nanoseconds (about 292 years).
    public static func parse(_ text: String) -> MeshDuration? {
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        // Index into `units` of the smallest unit used so far plus one: a later
        // part must use a strictly smaller unit, which rules out `30s1m` and `1s1s`.
        var firstAllowedUnit = 0
        while !rest.isEmpty {
            let digits = rest.prefix { $0 >= "0" && $0 <= "9" }
            guard !digits.isEmpty, let count = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let suffix = rest.prefix { $0 >= "a" && $0 <= "z" }
            rest = rest.dropFirst(suffix.count)
            guard let unitIndex = units.firstIndex(where: { $0.suffix == suffix }),
                  unitIndex >= firstAllowedUnit else { return nil }
            let (part, partOverflow) = count.multipliedReportingOverflow(by: units[unitIndex].nanoseconds)
            let (sum, sumOverflow) = total.addingReportingOverflow(part)
            guard !partOverflow, !sumOverflow else { return nil }
            total = sum
            firstAllowedUnit = unitIndex + 1
        }
        return MeshDuration(nanoseconds: total)
    }

    /// The canonical spelling: every non-zero unit from largest to smallest,
    /// e.g. `1m30s`, `1s500ms`, `250ms`; zero is `0s`. `parse` reads it back
    /// to the same value. A negative duration (which no config can produce)
    /// gets a leading `-` so that it is still recognisable in logs.
    public static func format(_ duration: MeshDuration) -> String {
        guard duration.nanoseconds != 0 else { return "0s" }
        // `magnitude` is a UInt64, so even Int64.min has a positive counterpart.
        var remaining = duration.nanoseconds.magnitude
        var text = duration.nanoseconds < 0 ? "-" : ""
        for unit in units {
            let size = UInt64(unit.nanoseconds)
            let count = remaining / size
            if count > 0 {
                text += "\(count)\(unit.suffix)"
                remaining -= count * size
            }
        }
        return text
    }
}
