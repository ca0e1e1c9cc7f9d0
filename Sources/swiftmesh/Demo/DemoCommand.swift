import ArgumentParser
import Foundation
import MeshConfig
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftmesh demo`: the whole system on this machine in one command (see
/// `DemoMesh`), with traffic through the gateway and a live table of how
/// the mesh spreads it.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the mesh on this machine: a control plane, a gateway, 3 user and 2 alive instances with sidecars, and traffic.",
        discussion: """
            Every piece is a process of its own on 127.0.0.1, started from this binary: sidecars in mutual TLS \
            with certificates from the control plane, and authorization policies that let only the gateway call \
            user and alive. The table shows, per instance, its share of the answers, the latency the client saw \
            and the caller identity the instance's sidecar vouched for. --scenario failover kills user-2 (app and \
            sidecar, SIGKILL) a third of the way in; --scenario canary applies a 90/10 split between versions v1 \
            and v2 of user then. Ctrl-C or SIGTERM stops every process. The exit status is 1 when a request failed.
            """)

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case none, failover, canary
    }

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Option(name: .long, help: "none, failover or canary.")
    var scenario: Scenario = .none

    @Option(name: .long, help: ArgumentHelp("Stop after this long, e.g. 20s (default: run until Ctrl-C).", valueName: "duration"))
    var duration: String?

    @Option(name: .long, help: "Requests per second through the gateway.")
    var rate = 100

    @Option(name: .shortAndLong, help: "table (live, in place on a terminal) or json (one summary at the end).")
    var output: Output = .table

    @Flag(name: .long, help: "Keep the demo's directory (every process's log, the control plane's data) after it stops.")
    var keep = false

    func validate() throws {
        if let duration {
            guard let parsed = DurationSyntax.parse(duration), parsed.nanoseconds >= 3_000_000_000 else {
                throw ValidationError("--duration: \"\(duration)\" is not a duration of at least 3s, such as 20s or 1m")
            }
            guard scenario == .none || parsed.nanoseconds >= 9_000_000_000 else {
                throw ValidationError("--duration: a scenario needs at least 9s (its event comes a third of the way in), got \(duration)")
            }
        }
        guard (1...5000).contains(rate) else {
            throw ValidationError("--rate must be from 1 to 5000 requests per second, got \(rate)")
        }
    }

    func run() async throws {
        let signals = SignalEvents([SIGINT, SIGTERM, SIGHUP])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftmesh-demo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let mesh = try DemoMesh(directory: directory)
        let tally = DemoTally()
        let events = EventLog()
        let session = Task { try await startAndDrive(mesh, tally: tally, events: events) }
        // The first signal ends the session (startup included); a second, during the stop, kills what is left.
        let stopSignals = signals.stream
        let watcher = Task {
            var received = 0
            for await _ in stopSignals {
                received += 1
                if received == 1 {
                    session.cancel()
                } else {
                    say("demo: stopping at once (SIGKILL)")
                    mesh.killAll()
                }
            }
        }
        let outcome = await session.result
        let report = DemoReport(
            mesh: mesh, tally: tally.snapshot, elapsedSeconds: events.secondsOfTraffic,
            retries: await mesh.gatewayRetries(), events: events.all, scenario: scenario.rawValue)
        await mesh.stop()
        watcher.cancel()
        withExtendedLifetime(signals) {}

        // A signal during startup may surface as any error of the step it cut short.
        if case .failure(let error) = outcome, !session.isCancelled {
            say("demo: \(error)\ndemo: the logs are kept in \(directory.path)")
            throw ExitCode(1)
        }
        if !keep {
            try? FileManager.default.removeItem(at: directory)
        }
        guard case .success = outcome else {
            return  // stopped by a signal during startup: there is nothing to report
        }
        switch output {
        case .table:
            print(report.text)
        case .json:
            let data = try JSONSerialization.data(withJSONObject: report.json, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if report.tally.failed > 0 || events.all.contains(where: \.failed) {
            throw ExitCode(1)
        }
    }

    /// Starts the mesh, then sends traffic, plays the scenario and refreshes
    /// the table until the duration is up or the task is cancelled (a signal).
    private func startAndDrive(
        _ mesh: DemoMesh, tally: DemoTally, events: EventLog
    ) async throws {
        try await mesh.start { say("demo: \($0)") }
        let addresses = """

            gateway    \(mesh.gatewayURL)   (try: curl \(mesh.gatewayURL)/users/7)
            dashboard  \(mesh.controlPlaneURL)/dashboard
            top        swiftmesh top --control-plane \(mesh.controlPlaneURL)
            logs       \(mesh.directory.path)\(keep ? "" : " (removed at the end; --keep keeps it)")

            """
        say(addresses)
        let limit = duration.flatMap(DurationSyntax.parse).map { Duration.nanoseconds($0.nanoseconds) }
        let eventAt = limit.map { $0 / 3 } ?? .seconds(5)
        let inPlace = output == .table && isatty(STDOUT_FILENO) == 1
        events.trafficStarts()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await DemoTraffic(gatewayURL: mesh.gatewayURL, rate: rate, http: mesh.http, tally: tally).run()
            }
            group.addTask {
                guard scenario != .none, (try? await Task.sleep(for: eventAt)) != nil else { return }
                let event = await play(scenario, on: mesh, at: events.secondsOfTraffic)
                tally.startSecondPhase()
                events.add(event)
                if !inPlace { say("demo: \(event.what)") }
            }
            if inPlace {
                group.addTask {
                    while (try? await Task.sleep(for: .seconds(1))) != nil {
                        let report = DemoReport(
                            mesh: mesh, tally: tally.snapshot, elapsedSeconds: events.secondsOfTraffic,
                            retries: await mesh.gatewayRetries(), events: events.all, scenario: scenario.rawValue)
                        // The URLs stay on screen above the table.
                        print("\u{1B}[H\u{1B}[2J" + addresses.dropFirst() + report.text + "\n\nCtrl-C stops the demo.")
                        fflush(nil)
                    }
                }
            }
            // Until the duration is up, or until cancelled.
            try? await Task.sleep(for: limit ?? .seconds(365 * 24 * 3600))
            group.cancelAll()
        }
        if inPlace { print("\u{1B}[H\u{1B}[2J", terminator: "") }
    }

    /// Performs the scenario's event.
    private func play(_ scenario: Scenario, on mesh: DemoMesh, at time: Double) async -> DemoReport.Event {
        switch scenario {
        case .none:
            return DemoReport.Event(atSeconds: time, what: "", failed: false)
        case .failover:
            mesh.crash("user-2")
            return DemoReport.Event(atSeconds: time, what: "killed user-2 (its app and its sidecar, SIGKILL), as a crashed host", failed: false)
        case .canary:
            do {
                try await mesh.apply(DemoMesh.canarySplit)
                // The second phase begins once the gateway's sidecar has the split, not when the control plane took it.
                try await mesh.waitForGatewayCluster("user[version=v1]")
                return DemoReport.Event(
                    atSeconds: time,
                    what: "applied ServicePolicy user: 90% to version v1 (user-1, user-2), 10% to v2 (user-3)", failed: false)
            } catch {
                return DemoReport.Event(atSeconds: time, what: "could not apply the canary split: \(error)", failed: true)
            }
        }
    }
}

/// The scenario's events, shared between the task that plays them and the table.
/// Times count from the first request, not from the start of the processes.
private final class EventLog: Sendable {
    private let events = Mutex<[DemoReport.Event]>([])
    private let trafficStart = Mutex<ContinuousClock.Instant?>(nil)

    func add(_ event: DemoReport.Event) { events.withLock { $0.append(event) } }
    var all: [DemoReport.Event] { events.withLock { $0 } }

    func trafficStarts() { trafficStart.withLock { $0 = .now } }

    var secondsOfTraffic: Double {
        guard let start = trafficStart.withLock({ $0 }) else { return 0 }
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

/// Progress and events go to standard error, so that `-o json` output stays clean.
private func say(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
