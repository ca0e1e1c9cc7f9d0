import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// What the demo's client saw through the gateway: each answer by the
/// instance that served it (the gateway's JSON names it), and each failure
/// by its reason. Counts are kept per phase: before the scenario's event
/// and after it, so a kill or a split shows in the spread.
final class DemoTally: Sendable {
    struct InstanceTally {
        /// Answers in each phase.
        var requests = [0, 0]
        /// The latest `maxLatencies` latencies, a ring: percentiles follow the present.
        var latenciesMs: [Double] = []
        var nextLatency = 0
        /// Identities the instance saw calling it (its sidecar vouched for them).
        var callers: Set<String> = []
    }

    struct State {
        var phase = 0
        var instances: [String: InstanceTally] = [:]
        var succeeded = 0
        var failures: [String: Int] = [:]
        var failed: Int { failures.values.reduce(0, +) }
    }

    private let state = Mutex(State())
    /// Latencies kept per instance.
    static let maxLatencies = 10_000

    func answered(by instance: String, caller: String, latencyMs: Double) {
        state.withLock { state in
            var tally = state.instances[instance, default: InstanceTally()]
            tally.requests[state.phase] += 1
            if tally.latenciesMs.count < Self.maxLatencies {
                tally.latenciesMs.append(latencyMs)
            } else {
                tally.latenciesMs[tally.nextLatency] = latencyMs
                tally.nextLatency = (tally.nextLatency + 1) % Self.maxLatencies
            }
            if !caller.isEmpty {
                tally.callers.insert(caller)
            }
            state.instances[instance] = tally
            state.succeeded += 1
        }
    }

    func failed(_ reason: String) {
        state.withLock { $0.failures[reason, default: 0] += 1 }
    }

    /// The scenario's event happened: later answers count in the second phase.
    func startSecondPhase() {
        state.withLock { $0.phase = 1 }
    }

    var snapshot: State { state.withLock { $0 } }
}

/// The demo's client: `rate` requests a second through the gateway, spread
/// over a few concurrent workers, four in five `GET /users/{id}` and one in
/// five `GET /alive`.
struct DemoTraffic {
    let gatewayURL: String
    let rate: Int
    let http: HTTPClient
    let tally: DemoTally
    static let workers = 8

    /// Runs until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<Self.workers {
                group.addTask { await work(worker) }
            }
        }
    }

    private func work(_ worker: Int) async {
        let interval = Duration.seconds(Double(Self.workers) / Double(max(rate, 1)))
        // Workers start staggered, so the requests are spread over each interval.
        var next = ContinuousClock.now + interval * (Double(worker) / Double(Self.workers))
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            try? await Task.sleep(until: next)
            next += interval
            let path = Int.random(in: 0..<5, using: &random) == 0 ? "/alive" : "/users/\(Int.random(in: 1...1000, using: &random))"
            await call(path)
        }
    }

    private func call(_ path: String) async {
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(HTTPClientRequest(url: gatewayURL + path), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            if Task.isCancelled { return }
            let elapsed = ContinuousClock.now - started
            let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            guard response.status == .ok, let instance = object["servedBy"] as? String else {
                // Without the request id the proxy appends, so that alike failures count together.
                let reason = (object["error"] as? String ?? "no reason given")
                    .components(separatedBy: " (request id").first ?? ""
                tally.failed("\(path.hasPrefix("/users") ? "GET /users/{id}" : "GET /alive"): \(response.status.code) \(reason)")
                return
            }
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            tally.answered(by: instance, caller: object["caller"] as? String ?? "", latencyMs: milliseconds)
        } catch {
            if Task.isCancelled { return }
            tally.failed("no answer from the gateway: \(error)")
        }
    }
}
