import MeshConfig
import NIOCore

/// The ejection bookkeeping of one cluster's outlier detection, as a plain
/// value with the clock passed in: which endpoints are ejected until when,
/// and how many times each was ejected (the ejection time multiplier).
/// `OutlierDetector` owns one and feeds it events.
struct OutlierState {
    struct Endpoint: Equatable {
        /// When the current ejection ends; nil: in service.
        var ejectedUntil: NIODeadline?
        /// The multiplier of `baseEjectionTime`: raised by every ejection,
        /// lowered by every interval spent in service.
        var ejections = 0
        /// Ejected during the current interval (so its multiplier does not decay yet).
        var ejectedThisInterval = false
    }

    struct Changes: Equatable {
        var returned: [String] = []
        var ejected: [String] = []

        var isEmpty: Bool { returned.isEmpty && ejected.isEmpty }
    }

    let config: OutlierDetectionConfig
    private(set) var endpoints: [String: Endpoint] = [:]

    init(config: OutlierDetectionConfig) {
        self.config = config
    }

    var ejectedCount: Int { endpoints.values.count { $0.ejectedUntil != nil } }

    /// How many endpoints may be ejected at once: `maxEjectionPercent` of
    /// them, and always at least one.
    var maxEjected: Int { max(1, endpoints.count * config.maxEjectionPercent / 100) }

    /// Discovery changed the endpoint set: new ones start in service, gone ones are forgotten.
    mutating func setEndpoints(_ labels: [String]) {
        var next: [String: Endpoint] = [:]
        for label in labels {
            next[label] = endpoints[label] ?? Endpoint()
        }
        endpoints = next
    }

    /// Ejects `label` unless it is unknown, already ejected, or the cluster
    /// is at `maxEjected`. Returns whether it did.
    mutating func eject(_ label: String, now: NIODeadline) -> Bool {
        guard var endpoint = endpoints[label], endpoint.ejectedUntil == nil, ejectedCount < maxEjected else { return false }
        endpoint.ejections += 1
        let multiplied = config.baseEjectionTime.nanoseconds.multipliedReportingOverflow(by: Int64(endpoint.ejections))
        let length = multiplied.overflow ? config.maxEjectionTime.nanoseconds : min(multiplied.partialValue, config.maxEjectionTime.nanoseconds)
        endpoint.ejectedUntil = now + .nanoseconds(length)
        endpoint.ejectedThisInterval = true
        endpoints[label] = endpoint
        return true
    }

    /// The end of an interval: ejections that are over end, multipliers of
    /// endpoints that stayed in service decay, and with success-rate
    /// detection, `outcomes` (successes and failures per endpoint during the
    /// interval) may eject endpoints far below the others.
    mutating func sweep(now: NIODeadline, outcomes: [String: (successes: Int, failures: Int)]) -> Changes {
        var changes = Changes()
        for label in endpoints.keys.sorted() {
            guard var endpoint = endpoints[label] else { continue }
            if let until = endpoint.ejectedUntil, until <= now {
                endpoint.ejectedUntil = nil
                changes.returned.append(label)
            } else if endpoint.ejectedUntil == nil, !endpoint.ejectedThisInterval, endpoint.ejections > 0 {
                endpoint.ejections -= 1
            }
            endpoint.ejectedThisInterval = false
            endpoints[label] = endpoint
        }
        if let successRate = config.successRate {
            for label in Self.successRateOutliers(successRate, outcomes: outcomes.filter { endpoints[$0.key]?.ejectedUntil == nil })
            where eject(label, now: now) {
                changes.ejected.append(label)
            }
        }
        return changes
    }

    /// Endpoints with enough requests whose success rate is below the mean
    /// by more than `stdevFactor` standard deviations, lowest first; none
    /// when fewer than `minimumHosts` endpoints had enough requests.
    static func successRateOutliers(
        _ config: SuccessRateConfig, outcomes: [String: (successes: Int, failures: Int)]
    ) -> [String] {
        let rates = outcomes.compactMap { label, outcome -> (String, Double)? in
            let total = outcome.successes + outcome.failures
            return total >= config.requestVolume && total > 0 ? (label, Double(outcome.successes) / Double(total)) : nil
        }
        guard rates.count >= config.minimumHosts, !rates.isEmpty else { return [] }
        let mean = rates.reduce(0) { $0 + $1.1 } / Double(rates.count)
        let variance = rates.reduce(0) { $0 + ($1.1 - mean) * ($1.1 - mean) } / Double(rates.count)
        let threshold = mean - config.stdevFactor * variance.squareRoot()
        return rates.filter { $0.1 < threshold }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
    }
}
