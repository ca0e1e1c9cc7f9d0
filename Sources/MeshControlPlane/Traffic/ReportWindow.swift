/// One sidecar's reports of counts kept since its proxy started, over a
/// window: what the traffic and route-match views take differences of. The
/// last report before the window stays, as the start of the differences;
/// reports closer together than `spacingMillis` replace each other, so a
/// sidecar heartbeating every 10 ms holds `window / spacing` reports.
struct ReportWindow<Counts> {
    struct Report {
        var atMillis: Int64
        var counts: Counts
    }

    let windowMillis: Int64
    let spacingMillis: Int64
    private(set) var reports: [Report] = []

    init(windowMillis: Int64, spacingMillis: Int64) {
        self.windowMillis = windowMillis
        self.spacingMillis = spacingMillis
    }

    mutating func add(_ counts: Counts, atMillis: Int64) {
        let report = Report(atMillis: atMillis, counts: counts)
        if reports.count >= 2, atMillis - reports[reports.count - 2].atMillis < spacingMillis {
            reports[reports.count - 1] = report
        } else {
            reports.append(report)
        }
        while reports.count > 2, reports[1].atMillis <= atMillis - windowMillis {
            reports.removeFirst()
        }
    }

    /// The oldest and newest reports to take the difference of, or nil when
    /// the newest is older than `freshMillis` (the sidecar went silent) or
    /// there is no span yet.
    func span(nowMillis: Int64, freshMillis: Int64) -> (oldest: Report, newest: Report)? {
        guard let newest = reports.last, newest.atMillis > nowMillis - freshMillis,
              let oldest = reports.first, newest.atMillis > oldest.atMillis else { return nil }
        return (oldest, newest)
    }
}
