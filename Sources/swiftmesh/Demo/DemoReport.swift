import Foundation

/// The demo's table: per instance, the answers it gave (its share of its
/// service's, before and after the scenario's event), the latency the
/// client saw, and the caller identity the instance's sidecar vouched for;
/// then totals, retries and events. Also the same as JSON, for scripts.
struct DemoReport {
    struct Event {
        var atSeconds: Double
        var what: String
        /// The scenario could not do what it meant to (the demo then exits 1).
        var failed: Bool
    }

    let mesh: DemoMesh
    let tally: DemoTally.State
    let elapsedSeconds: Double
    let retries: Int?
    let events: [Event]
    let scenario: String

    private struct Row {
        var service: String
        var instance: String
        var version: String
        var requests: [Int]
        var p50: Double?
        var p99: Double?
        var callers: [String]
    }

    private var rows: [Row] {
        mesh.instances.map { instance in
            let seen = tally.instances[instance.name] ?? DemoTally.InstanceTally()
            let sorted = seen.latenciesMs.sorted()
            return Row(
                service: instance.service, instance: instance.name, version: instance.version ?? "-",
                requests: seen.requests, p50: Self.percentile(sorted, 0.50), p99: Self.percentile(sorted, 0.99),
                callers: seen.callers.sorted())
        }
    }

    private var hasSecondPhase: Bool { !events.isEmpty }

    var text: String {
        var lines = [String(
            format: "%.1f s, %d requests through the gateway, %d failed, %@ retried by the gateway's sidecar (scenario: %@)",
            elapsedSeconds, tally.succeeded + tally.failed, tally.failed, retries.map(String.init) ?? "?", scenario)]
        lines.append("")
        var header = ["service", "instance", "version", "answers"]
        header += hasSecondPhase ? ["share before", "share after"] : ["share"]
        header += ["p50 ms", "p99 ms", "caller seen by the instance"]
        let all = rows
        var table = [header]
        for row in all {
            let service = all.filter { $0.service == row.service }
            var cells = [row.service, row.instance, row.version, String(row.requests.reduce(0, +))]
            let phases = hasSecondPhase ? [0, 1] : [0]
            for phase in phases {
                cells.append(Self.share(row.requests[phase], of: service.map { $0.requests[phase] }.reduce(0, +)))
            }
            cells += [row.p50.map { String(format: "%.1f", $0) } ?? "-", row.p99.map { String(format: "%.1f", $0) } ?? "-",
                      row.callers.joined(separator: ", ")]
            table.append(cells)
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for cells in table {
            lines.append(zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        if !events.isEmpty {
            lines.append("")
            lines += events.map { String(format: "at %.1f s: %@", $0.atSeconds, $0.what) }
        }
        if !tally.failures.isEmpty {
            lines.append("")
            lines.append("failures:")
            lines += tally.failures.sorted { $0.value > $1.value }.prefix(5).map { "  \($0.value) x \($0.key)" }
        }
        return lines.joined(separator: "\n")
    }

    var json: [String: Any] {
        [
            "scenario": scenario,
            "seconds": (elapsedSeconds * 10).rounded() / 10,
            "requests": tally.succeeded + tally.failed,
            "failed": tally.failed,
            "failures": tally.failures,
            "retries": retries as Any,
            "events": events.map { ["atSeconds": ($0.atSeconds * 10).rounded() / 10, "what": $0.what, "failed": $0.failed] },
            "instances": rows.map { row -> [String: Any] in
                [
                    "service": row.service, "instance": row.instance, "version": row.version,
                    "answers": row.requests.reduce(0, +), "answersBefore": row.requests[0], "answersAfter": row.requests[1],
                    "p50Ms": row.p50 as Any, "p99Ms": row.p99 as Any, "callers": row.callers,
                ]
            },
        ]
    }

    private static func share(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "-" : String(format: "%.1f%%", Double(part) * 100 / Double(whole))
    }

    /// The nearest-rank percentile.
    private static func percentile(_ sorted: [Double], _ quantile: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((Double(sorted.count) * quantile).rounded(.up))
        return sorted[max(0, min(sorted.count, rank) - 1)]
    }
}
