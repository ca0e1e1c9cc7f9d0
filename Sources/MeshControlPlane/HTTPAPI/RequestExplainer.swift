import AsyncHTTPClient
import Foundation
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
                  let requests = object["requests"] as? [Any], !requests.isEmpty else { continue }
            var entry: [String: Any] = ["sidecar": admin.sidecarID, "admin": admin.address.description, "requests": requests]
            entry["service"] = admin.service
            found.sidecars.append(entry)
        }
        return found
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
