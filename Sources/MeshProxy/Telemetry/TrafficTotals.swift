import MeshConfig

/// What the proxy counted for one direction and one service since it
/// started: a sidecar sends these with every heartbeat, and the control
/// plane turns the differences into live rates and latencies.
public struct TrafficTotals: Sendable, Equatable {
    public var direction: TrafficDirection
    /// Outbound: the service called; inbound: the service served.
    public var service: String
    public var requests: UInt64
    /// 5xx responses (the proxy's own included) and gRPC statuses other than OK.
    public var failures: UInt64
    /// Upper bounds in seconds; the last bucket (+Inf) has none.
    public var bucketBoundsSeconds: [Double]
    /// Requests per bucket, not cumulative: one more than the bounds.
    public var bucketCounts: [UInt64]

    public init(
        direction: TrafficDirection, service: String, requests: UInt64, failures: UInt64,
        bucketBoundsSeconds: [Double], bucketCounts: [UInt64]
    ) {
        self.direction = direction
        self.service = service
        self.requests = requests
        self.failures = failures
        self.bucketBoundsSeconds = bucketBoundsSeconds
        self.bucketCounts = bucketCounts
    }
}

extension StatsSnapshot {
    /// Per direction and destination service; requests the proxy answered
    /// before choosing a cluster (no route, malformed) belong to no service and are left out.
    var trafficTotals: [TrafficTotals] {
        struct Key: Hashable {
            var direction: String
            var service: String
        }
        var totals: [Key: TrafficTotals] = [:]
        func entry(_ key: Key) -> TrafficTotals {
            totals[key] ?? TrafficTotals(
                direction: TrafficDirection(rawValue: key.direction) ?? .outbound, service: key.service, requests: 0,
                failures: 0, bucketBoundsSeconds: DurationHistogram.boundsSeconds,
                bucketCounts: Array(repeating: 0, count: DurationHistogram.boundsSeconds.count + 1))
        }
        for (labels, count) in requests where !labels.route.service.isEmpty {
            let key = Key(direction: labels.route.direction, service: labels.route.service)
            var total = entry(key)
            total.requests += count
            if labels.statusClass == "5xx" || !(labels.grpcStatus.isEmpty || labels.grpcStatus == "0") {
                total.failures += count
            }
            totals[key] = total
        }
        for (labels, tally) in routes where !labels.service.isEmpty {
            let key = Key(direction: labels.direction, service: labels.service)
            var total = entry(key)
            for (slot, count) in tally.durations.counts.enumerated() {
                total.bucketCounts[slot] += count
            }
            totals[key] = total
        }
        return totals.keys.sorted { ($0.direction, $0.service) < ($1.direction, $1.service) }.compactMap { totals[$0] }
    }
}
