@testable import MeshConfig

/// Builds small config documents in flow style, so that each test states only
/// the part it is about and the rest is known to be valid.
enum Fixture {
    static let userCluster = "{ name: user, endpoints: [127.0.0.1:9000] }"

    static func listener(
        name: String = "ingress",
        listen: String = "127.0.0.1:8080",
        routes: [String] = ["{ cluster: user }"],
        extra: String = ""
    ) -> String {
        "{ name: \(name), listen: \(listen), routes: [\(routes.joined(separator: ", "))]\(extra) }"
    }

    static func route(_ fields: String) -> String {
        listenerDocument(routes: ["{ \(fields) }"])
    }

    static func cluster(_ fields: String) -> String {
        document(clusters: ["{ \(fields) }"])
    }

    static func listenerDocument(routes: [String]) -> String {
        document(listeners: [listener(routes: routes)])
    }

    /// `top` is inserted as-is before `listeners:` (e.g. `drainTimeout: 5s\n`).
    static func document(
        top: String = "",
        listeners: [String] = [listener()],
        clusters: [String] = [userCluster]
    ) -> String {
        top
            + "listeners:\n" + listeners.map { "  - \($0)\n" }.joined()
            + (clusters.isEmpty ? "clusters: []\n" : "clusters:\n" + clusters.map { "  - \($0)\n" }.joined())
    }
}

/// The issues decoding `yaml` reports; empty when it decodes.
func issues(_ yaml: String) -> [ConfigIssue] {
    do {
        _ = try ConfigLoader.decode(yaml: yaml)
        return []
    } catch {
        return error.issues
    }
}

/// The one issue decoding `yaml` reports, or nil when there is not exactly one.
func onlyIssue(_ yaml: String) -> ConfigIssue? {
    let found = issues(yaml)
    return found.count == 1 ? found[0] : nil
}

/// Every issue applying `yaml` as mesh resources reports; empty when it decodes.
func resourceIssues(_ yaml: String) -> [ConfigIssue] {
    do {
        _ = try ResourceLoader.decode(yaml: yaml)
        return []
    } catch {
        return error.issues
    }
}
