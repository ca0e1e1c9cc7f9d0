import Foundation

/// A ServicePolicy spec as compact JSON with the YAML's keys: what the
/// control plane stores and sends to sidecars, and what `ResourceLoader.decodePolicy`
/// reads back to the same value. Keys with no value are left out.
public enum ServicePolicyJSON {
    public static func render(_ policy: ServicePolicy) -> String {
        SpecJSON.render(PolicyJSON(policy))
    }

    /// What sidecars' clusters for the policy's service run with, every key
    /// set (`ServicePolicy.effectiveSettings`): the policy's keys over the mesh's defaults.
    public static func renderEffectiveSettings(_ policy: ServicePolicy) -> String {
        SpecJSON.render(ClusterSettingsJSON(ClusterSettings.Overrides(policy.effectiveSettings)))
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
    var settings: ClusterSettingsJSON
    var routes: [PolicyRouteJSON]?

    init(_ policy: ServicePolicy) {
        service = policy.service
        settings = ClusterSettingsJSON(policy.settings)
        routes = policy.routes.isEmpty ? nil : policy.routes.map(PolicyRouteJSON.init)
    }

    private enum CodingKeys: String, CodingKey {
        case service, routes
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(service, forKey: .service)
        try container.encodeIfPresent(routes, forKey: .routes)
        // The shared keys sit beside these, as in the YAML.
        try settings.encode(to: encoder)
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
