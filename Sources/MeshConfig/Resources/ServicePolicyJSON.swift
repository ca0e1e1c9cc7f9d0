import Foundation

/// A ServicePolicy spec as compact JSON with the YAML's keys: what the
/// control plane stores and sends to sidecars, and what `ResourceLoader.decodePolicy`
/// reads back to the same value. Keys with no value are left out.
public enum ServicePolicyJSON {
    public static func render(_ policy: ServicePolicy) -> String {
        SpecJSON.render(PolicyJSON(policy))
    }
}

/// A resource spec's JSON: compact, keys sorted, so equal specs give equal text.
enum SpecJSON {
    static func render(_ spec: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(spec), as: UTF8.self)
        } catch {
            // Only strings, numbers, booleans, arrays and objects with string keys.
            preconditionFailure("encoding a resource spec failed: \(error)")
        }
    }
}

private struct PolicyJSON: Encodable {
    var service: String
    var loadBalancing: String?
    var hashHeader: String?
    var connectTimeout: String?
    var idleTimeout: String?
    var circuitBreaker: CircuitBreakerJSON?
    var outlierDetection: OutlierDetectionJSON?
    var healthCheck: HealthCheckJSON?
    var panicThreshold: Int?
    var routes: [PolicyRouteJSON]?

    init(_ policy: ServicePolicy) {
        service = policy.service
        loadBalancing = policy.loadBalancing?.rawValue
        hashHeader = policy.hashHeader
        connectTimeout = policy.connectTimeout?.description
        idleTimeout = policy.idleTimeout?.description
        circuitBreaker = policy.circuitBreaker.map(CircuitBreakerJSON.init)
        outlierDetection = policy.outlierDetection.map(OutlierDetectionJSON.init)
        healthCheck = policy.healthCheck.map(HealthCheckJSON.init)
        panicThreshold = policy.panicThreshold
        routes = policy.routes.isEmpty ? nil : policy.routes.map(PolicyRouteJSON.init)
    }
}

private struct PolicyRouteJSON: Encodable {
    struct Destination: Encodable {
        var service: String
        var subset: [String: String]?
        var weight: Int
    }

    var match: MatchJSON
    var timeout: String?
    var retries: RetriesJSON?
    var fault: FaultJSON?
    var requestHeadersToAdd: [String: String]?
    var requestHeadersToRemove: [String]?
    var split: [Destination]?

    init(_ route: PolicyRoute) {
        match = MatchJSON(route.match)
        timeout = route.timeout?.description
        retries = route.retries.map(RetriesJSON.init)
        fault = route.fault.map(FaultJSON.init)
        requestHeadersToAdd = HeaderEditsJSON.added(route.requestHeadersToAdd)
        requestHeadersToRemove = route.requestHeadersToRemove.isEmpty ? nil : route.requestHeadersToRemove
        split = route.split?.map { Destination(service: $0.service, subset: $0.subset.isEmpty ? nil : $0.subset, weight: $0.weight) }
    }
}
