import ArgumentParser
import Foundation

/// `swiftmesh top`: the control plane's live traffic view as a terminal
/// table, refreshed in place, like `top` for the mesh.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live requests/s, success rate and latency per service and per caller-to-callee edge.",
        discussion: """
            Reads GET /api/v1/traffic, which the control plane computes from what every sidecar
            reports with its heartbeats (the last 10 seconds). MEASURED says where a service's
            figures come from: inbound (what its instances served, with the calls its callers'
            sidecars answered themselves), callers (a service outside the mesh), outbound (an
            entry service: its own calls). Refreshes in place until Ctrl-C; --once prints one
            table and exits, for scripts.
            """)

    @OptionGroup var api: ControlPlaneAPIOptions

    @Flag(name: .long, help: "Print one table and exit.")
    var once = false

    @Option(name: .long, help: "Seconds between refreshes.")
    var interval: Double = 2

    func validate() throws {
        guard interval >= 0.2 else {
            throw ValidationError("--interval must be at least 0.2 seconds, got \(interval)")
        }
    }

    func run() async throws {
        try await CLIFailure.reported {
            let client = ControlPlaneAPIClient(options: api)
            // In place only on a terminal; piped output gets one table after another.
            let inPlace = !once && isatty(STDOUT_FILENO) == 1
            while true {
                let traffic = try client.expectSuccess(try await client.send(.GET, "/api/v1/traffic"))
                let text = Self.render(traffic, controlPlane: api.controlPlane)
                print(inPlace ? "\u{1B}[H\u{1B}[2J" + text : text)
                if once { return }
                if !inPlace { print() }
                // A pipe would otherwise hold the tables in stdio's buffer.
                fflush(nil)
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }
    }

    static func render(_ traffic: [String: Any], controlPlane: String) -> String {
        let window = (traffic["windowSeconds"] as? Double).map { String(format: "%.0f", $0) } ?? "?"
        let services = (traffic["services"] as? [[String: Any]] ?? []).map { row -> [String: Any] in
            var cells = statCells(row)
            cells["name"] = row["name"]
            cells["instances"] = "\(row["healthyInstances"] ?? 0)/\(row["instances"] ?? 0)"
            cells["measured"] = row["source"] as? String
            return cells
        }
        let edges = (traffic["edges"] as? [[String: Any]] ?? []).map { row -> [String: Any] in
            var cells = statCells(row)
            cells["from"] = row["from"]
            cells["to"] = row["to"]
            return cells
        }
        let stats: [(title: String, key: String)] = [
            ("RPS", "rps"), ("SUCCESS", "success"), ("P50", "p50"), ("P99", "p99"),
        ]
        var text = "swiftmesh top — \(controlPlane), last \(window) s\n\n"
        text += Table.render(
            rows: services, columns: [("SERVICE", "name"), ("INSTANCES", "instances")] + stats + [("MEASURED", "measured")])
        let sources = Set(services.compactMap { $0["measured"] as? String })
        if sources.contains("callers") {
            text += "\ncallers: a service outside the mesh, as its callers' sidecars saw it"
        }
        if sources.contains("outbound") {
            text += "\noutbound: an entry service (its clients call its app directly), by its own calls to other services"
        }
        text += "\n\n"
        text += edges.isEmpty
            ? "no calls between services in the last \(window) s"
            : Table.render(rows: edges, columns: [("FROM", "from"), ("TO", "to")] + stats)
        return text
    }

    /// Requests/s with one decimal, success as a percentage, latencies in
    /// ms; "-" where the window had no requests.
    private static func statCells(_ row: [String: Any]) -> [String: Any] {
        var cells: [String: Any] = [:]
        cells["rps"] = (row["requestsPerSecond"] as? Double).map { String(format: "%.1f", $0) }
        cells["success"] = (row["successRate"] as? Double).map { String(format: "%.2f%%", $0 * 100) }
        cells["p50"] = (row["latencyP50Ms"] as? Double).map { String(format: "%.1fms", $0) }
        cells["p99"] = (row["latencyP99Ms"] as? Double).map { String(format: "%.1fms", $0) }
        return cells
    }
}
