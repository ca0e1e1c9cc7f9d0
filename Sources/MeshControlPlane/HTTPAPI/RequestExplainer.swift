import AsyncHTTPClient
import Foundation
import MeshConfig
import NIOCore

/// Finds the proxies that saw a request: asks the admin listener of every
/// connected sidecar for `/requests/{id}` at once, each within a short
/// timeout, and gathers what they recorded.
struct RequestExplainer {
    static let perSidecarTimeout = TimeAmount.seconds(2)

    struct Found {
        var sidecars: [[String: Any]]
        var unreachable: [String]
    }

    let controlPlane: ControlPlane

    func explain(_ requestID: String) async -> Found {
        let admins = await controlPlane.sidecarAdmins
        let escaped = requestID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? requestID
        let answers = await withTaskGroup(of: (ControlPlane.SidecarAdmin, Data?).self) { group in
            for admin in admins {
                group.addTask {
                    (admin, await Self.fetch("http://\(admin.address)/requests/\(escaped)"))
                }
            }
            var answers: [(ControlPlane.SidecarAdmin, Data?)] = []
            for await answer in group {
                answers.append(answer)
            }
            return answers
        }
        var found = Found(sidecars: [], unreachable: [])
        for (admin, data) in answers.sorted(by: { $0.0.sidecarID < $1.0.sidecarID }) {
            guard let data else {
                found.unreachable.append(admin.sidecarID)
                continue
            }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  var requests = object["requests"] as? [[String: Any]], !requests.isEmpty else { continue }
            for index in requests.indices {
                await explainMissingEndpoints(&requests[index])
            }
            var entry: [String: Any] = ["sidecar": admin.sidecarID, "admin": admin.address.description, "requests": requests]
            entry["service"] = admin.service
            found.sidecars.append(entry)
        }
        return found
    }

    /// A sidecar that had no endpoint for a request only knew the instances
    /// the control plane sent it: adds to its record the service's registered
    /// instances and why each was not among them (unhealthy, outside the subset).
    private func explainMissingEndpoints(_ record: inout [String: Any]) async {
        guard (record["proxyError"] as? [String: Any])?["reason"] as? String == "no_endpoints",
              let cluster = record["cluster"] as? String, let service = record["service"] as? String else { return }
        let subset = await controlPlane.subset(ofCluster: cluster, service: service)
        let instances = await controlPlane.storedInstances(of: service).map { stored -> [String: Any] in
            let address = HostPort(host: stored.instance.key.address, port: stored.instance.key.port).description
            var entry: [String: Any] = ["address": address, "labels": stored.instance.labels]
            if !stored.healthy {
                entry["leftOut"] = "unhealthy: its sidecar cannot reach its app"
            } else if let subset, !subset.allSatisfy({ stored.instance.labels[$0.key] == $0.value }) {
                entry["leftOut"] = "outside the subset \(PolicyDestination.labelsText(subset))"
            }
            return entry
        }
        var registered: [String: Any] = ["service": service, "instances": instances]
        registered["subset"] = subset.map { $0.isEmpty ? NSNull() : $0 as Any }
        record["registered"] = registered
    }

    /// The body of a 200, an empty object for a 404 (the sidecar did not see
    /// the request), nil when the sidecar could not be asked.
    private static func fetch(_ url: String) async -> Data? {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: perSidecarTimeout)
            let body = try await response.body.collect(upTo: 4 << 20)
            switch response.status.code {
            case 200: return Data(body.readableBytesView)
            case 404: return Data("{}".utf8)
            default: return nil
            }
        } catch {
            return nil
        }
    }
}
