import MeshAPI

/// Live traffic per service and per caller-to-callee edge. Sidecars send
/// their proxies' totals (counted since each started) with every heartbeat;
/// the monitor keeps each sidecar's samples of the last `window` and turns
/// the difference between its oldest and newest into rates, success rates
/// and latency quantiles. Kept in memory only: it is a view of now.
struct TrafficMonitor {
    /// How far back rates look.
    static let windowMillis: Int64 = 10_000

    struct Key: Hashable {
        /// `inbound` or `outbound`.
        var direction: String
        var service: String
        /// Outbound requests the sidecar answered itself, no instance having taken them.
        var answeredByProxy = false
    }

    struct Totals {
        var requests: UInt64
        var failures: UInt64
        var boundsSeconds: [Double]
        var bucketCounts: [UInt64]

        /// Every counter of `self` at most the same counter of `later`, with the same buckets.
        func isBelowOrEqual(_ later: Totals) -> Bool {
            requests <= later.requests && failures <= later.failures && boundsSeconds == later.boundsSeconds
                && zip(bucketCounts, later.bucketCounts).allSatisfy { $0 <= $1 }
        }
    }

    /// Reports closer together than this replace each other: enough for a
    /// rate over the window, and bounded however fast a sidecar heartbeats.
    static let reportSpacingMillis: Int64 = 100

    private struct Reporter {
        /// The service of the sidecar's instance: the caller of its outbound traffic.
        var service: String
        var window = ReportWindow<[Key: Totals]>(
            windowMillis: TrafficMonitor.windowMillis, spacingMillis: TrafficMonitor.reportSpacingMillis)
    }

    private var reporters: [String: Reporter] = [:]

    /// At most this many entries per report are kept; a proxy has one per direction and service it saw.
    static let maxEntriesPerReport = 1024

    mutating func record(sidecarID: String, service: String, traffic: [Swiftmesh_V1_TrafficTotals], nowMillis: Int64) {
        var totals: [Key: Totals] = [:]
        for entry in traffic.prefix(Self.maxEntriesPerReport) where Self.isWellFormed(entry) {
            let key = Key(
                direction: entry.direction, service: entry.service,
                answeredByProxy: entry.direction == "outbound" && entry.answeredByProxy)
            totals[key] = Totals(
                requests: entry.requests, failures: entry.failures, boundsSeconds: entry.bucketBoundsSeconds,
                bucketCounts: entry.bucketCounts)
        }
        var reporter = reporters[sidecarID] ?? Reporter(service: service)
        reporter.service = service
        reporter.window.add(totals, atMillis: nowMillis)
        reporters[sidecarID] = reporter
    }

    /// What a proxy sends: finite, rising bounds with one more bucket than
    /// bounds, failures and bucket counts within the requests. Anything else
    /// (a bug, a hostile sidecar) is left out rather than trusted in sums.
    private static func isWellFormed(_ entry: Swiftmesh_V1_TrafficTotals) -> Bool {
        let bounds = entry.bucketBoundsSeconds
        guard entry.direction == "inbound" || entry.direction == "outbound", !entry.service.isEmpty,
              entry.service.utf8.count <= 253, bounds.count <= 64, entry.bucketCounts.count == bounds.count + 1,
              entry.failures <= entry.requests,
              bounds.allSatisfy({ $0.isFinite && $0 > 0 }), zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 }) else {
            return false
        }
        var sum: UInt64 = 0
        for count in entry.bucketCounts {
            let (added, overflow) = sum.addingReportingOverflow(count)
            guard !overflow else { return false }
            sum = added
        }
        return sum <= entry.requests
    }

    mutating func forget(sidecarID: String) {
        reporters.removeValue(forKey: sidecarID)
    }

    /// What the control plane knows of the mesh's shape, beyond traffic.
    struct Topology {
        /// Services with sidecars: their rows are what their instances served.
        var meshServices: Set<String> = []
        /// Services with sidecars that call others and that no sidecar calls:
        /// their clients call their apps directly, so they have no inbound figures.
        var entryServices: Set<String> = []
    }

    /// Traffic over the last window, per edge and per service: as its
    /// instances served it, with the calls its callers' sidecars answered
    /// without reaching an instance; for a service without sidecars, as its
    /// callers saw it; for an entry service, its own calls (`TrafficSummary.Source`).
    func summary(nowMillis: Int64, topology: Topology = Topology()) -> TrafficSummary {
        var served: [String: TrafficAccumulator] = [:]
        var unsent: [String: TrafficAccumulator] = [:]
        var edges: [TrafficSummary.Edge: TrafficAccumulator] = [:]
        for reporter in reporters.values {
            guard let (oldest, newest) = reporter.window.span(nowMillis: nowMillis, freshMillis: Self.windowMillis) else {
                continue
            }
            let seconds = Double(newest.atMillis - oldest.atMillis) / 1000
            for (key, now) in newest.counts {
                let before = oldest.counts[key]
                // Any total below its earlier value: the proxy restarted; count from zero.
                let base = before.flatMap { $0.isBelowOrEqual(now) ? $0 : nil }
                let delta = TrafficAccumulator(now, minus: base, seconds: seconds)
                if key.direction == "inbound" {
                    served[key.service, default: TrafficAccumulator()].add(delta)
                } else if key.answeredByProxy {
                    unsent[key.service, default: TrafficAccumulator()].add(delta)
                } else {
                    edges[TrafficSummary.Edge(from: reporter.service, to: key.service), default: TrafficAccumulator()].add(delta)
                }
            }
        }
        var called: [String: TrafficAccumulator] = [:]
        var calling: [String: TrafficAccumulator] = [:]
        for (edge, traffic) in edges {
            called[edge.to, default: TrafficAccumulator()].add(traffic)
            calling[edge.from, default: TrafficAccumulator()].add(traffic)
        }
        var services: [String: TrafficSummary.ServiceTraffic] = [:]
        let names = Set(served.keys).union(called.keys).union(calling.keys).union(topology.entryServices)
        for name in names {
            if topology.entryServices.contains(name) {
                services[name] = .init(stats: (calling[name] ?? TrafficAccumulator()).stats, source: .outbound)
            } else if served[name] != nil || topology.meshServices.contains(name) {
                // A request an instance took is in its inbound figures; one the
                // caller's sidecar answered itself (a fault abort, no endpoints)
                // is in no instance's, so it is added here.
                var own = served[name] ?? TrafficAccumulator()
                if let unsent = unsent[name] {
                    own.add(unsent)
                }
                services[name] = .init(stats: own.stats, source: .inbound)
            } else if let called = called[name] {
                // No sidecar serves it: instances registered through the API,
                // outside the mesh. Its callers' figures hold every call, answered or not.
                services[name] = .init(stats: called.stats, source: .callers)
            } else if let calling = calling[name] {
                // A caller nobody calls that the control plane does not know (yet) as an entry service.
                services[name] = .init(stats: calling.stats, source: .outbound)
            }
        }
        return TrafficSummary(
            windowSeconds: Double(Self.windowMillis) / 1000, services: services, edges: edges.mapValues(\.stats))
    }
}

/// Differences of totals added up over sidecars: requests/s add, counts and buckets add.
struct TrafficAccumulator {
    var requestsPerSecond = 0.0
    var requests: UInt64 = 0
    var failures: UInt64 = 0
    var boundsSeconds: [Double] = []
    var bucketCounts: [UInt64] = []

    init() {}

    /// `before` is nil or, counter by counter, at most `now` (`Totals.isBelowOrEqual`).
    init(_ now: TrafficMonitor.Totals, minus before: TrafficMonitor.Totals?, seconds: Double) {
        requests = now.requests - (before?.requests ?? 0)
        failures = now.failures - (before?.failures ?? 0)
        requestsPerSecond = seconds > 0 ? Double(requests) / seconds : 0
        boundsSeconds = now.boundsSeconds
        bucketCounts = now.bucketCounts
        if let before {
            for slot in bucketCounts.indices {
                bucketCounts[slot] -= before.bucketCounts[slot]
            }
        }
    }

    /// Saturating: sums of what many sidecars report cannot trap.
    mutating func add(_ other: TrafficAccumulator) {
        requestsPerSecond += other.requestsPerSecond
        requests = Self.sum(requests, other.requests)
        failures = Self.sum(failures, other.failures)
        if bucketCounts.isEmpty {
            boundsSeconds = other.boundsSeconds
            bucketCounts = other.bucketCounts
        } else if other.boundsSeconds == boundsSeconds {
            for slot in bucketCounts.indices {
                bucketCounts[slot] = Self.sum(bucketCounts[slot], other.bucketCounts[slot])
            }
        }
    }

    private static func sum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (total, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : total
    }

    var stats: TrafficSummary.Stats {
        TrafficSummary.Stats(
            requestsPerSecond: requestsPerSecond,
            successRate: requests > 0 ? 1 - Double(min(failures, requests)) / Double(requests) : nil,
            p50Seconds: quantile(0.5), p99Seconds: quantile(0.99))
    }

    /// As Prometheus's histogram_quantile: linear within the bucket the rank
    /// falls in; in the last (+Inf) bucket, the highest finite bound.
    func quantile(_ q: Double) -> Double? {
        let total = bucketCounts.reduce(0.0) { $0 + Double($1) }
        guard total > 0 else { return nil }
        let rank = q * total
        var cumulative = 0.0
        for (slot, count) in bucketCounts.enumerated() {
            let previous = cumulative
            cumulative += Double(count)
            guard cumulative >= rank, count > 0 else { continue }
            guard slot < boundsSeconds.count else { return boundsSeconds.last }
            let lower = slot == 0 ? 0 : boundsSeconds[slot - 1]
            return lower + (boundsSeconds[slot] - lower) * (rank - previous) / Double(count)
        }
        return boundsSeconds.last
    }
}

/// What `/api/v1/traffic` answers.
public struct TrafficSummary: Sendable {
    public struct Edge: Hashable, Sendable {
        /// The calling service (its sidecar's outbound traffic).
        public var from: String
        public var to: String
    }

    public struct Stats: Sendable {
        public var requestsPerSecond: Double
        /// nil without requests in the window.
        public var successRate: Double?
        public var p50Seconds: Double?
        public var p99Seconds: Double?
    }

    /// Where a service's figures come from.
    public enum Source: String, Sendable {
        /// Its instances' inbound listeners, with the calls to it that its
        /// callers' sidecars answered without reaching an instance.
        case inbound
        /// Its callers' sidecars: nothing reports serving it (instances registered through the API).
        case callers
        /// Its own sidecars' calls to other services: an entry service,
        /// whose clients call its app directly, so no inbound figures exist.
        case outbound
    }

    public struct ServiceTraffic: Sendable {
        public var stats: Stats
        public var source: Source
    }

    public var windowSeconds: Double
    public var services: [String: ServiceTraffic]
    public var edges: [Edge: Stats]
}
