import MeshAPI
import MeshConfig

/// Checks a snapshot from the control plane and reads each service out of it.
/// A snapshot with anything the proxy could not use is refused whole (the
/// sidecar keeps its previous one), and the reason, with the field path
/// inside the snapshot, goes back to the control plane.
enum SnapshotReader {
    /// The services of `snapshot`, which must be the ones the sidecar calls
    /// (`calling`) and those their policies route to.
    static func upstreams(
        of snapshot: Swiftmesh_V1_Snapshot, calling services: Set<String>
    ) -> Result<[String: SidecarConfig.Upstream], SnapshotRefusal> {
        var found: [String: SidecarConfig.Upstream] = [:]
        var paths: [String: String] = [:]
        for (index, upstream) in snapshot.upstreams.enumerated() {
            let path = "upstreams[\(index)]"
            guard found[upstream.service] == nil else {
                return .failure(SnapshotRefusal("\(path).service: \"\(upstream.service)\" appears twice"))
            }
            switch read(upstream, path: path) {
            case .success(let read):
                found[upstream.service] = read
                paths[upstream.service] = path
            case .failure(let refusal):
                return .failure(refusal)
            }
        }
        // Everything the called services' policies route to must be there, and nothing else.
        var needed = services
        for service in services.sorted() {
            guard let policy = found[service]?.policy, let path = paths[service] else { continue }
            for (routeIndex, route) in policy.routes.enumerated() {
                for (destinationIndex, destination) in (route.split ?? []).enumerated() where found[destination.service] == nil {
                    return .failure(SnapshotRefusal(
                        "\(path).policy_json.routes[\(routeIndex)].split[\(destinationIndex)].service: "
                            + "\"\(destination.service)\" has no entry in the snapshot"))
                }
            }
            needed.formUnion(policy.otherServices)
        }
        for (service, path) in paths where !needed.contains(service) {
            return .failure(SnapshotRefusal("\(path).service: \"\(service)\" is not a service this sidecar calls"))
        }
        return .success(found)
    }

    /// The authorization policy of the sidecar's own `service`; nil when it has none.
    static func authorization(
        of snapshot: Swiftmesh_V1_Snapshot, service: String
    ) -> Result<AuthorizationPolicy?, SnapshotRefusal> {
        guard !snapshot.authorizationPolicyJson.isEmpty else { return .success(nil) }
        let policy: AuthorizationPolicy
        do {
            policy = try ResourceLoader.decodeAuthorizationPolicy(json: snapshot.authorizationPolicyJson)
        } catch {
            return .failure(SnapshotRefusal(at: "authorization_policy_json", error))
        }
        guard policy.service == service else {
            return .failure(SnapshotRefusal(
                "authorization_policy_json.service: the policy is for \"\(policy.service)\", not this sidecar's service \"\(service)\""))
        }
        return .success(policy)
    }

    private static func read(_ upstream: Swiftmesh_V1_Upstream, path: String) -> Result<SidecarConfig.Upstream, SnapshotRefusal> {
        var protocolKind: UpstreamProtocol?
        // Whether the service is in the mesh (mutual TLS) is decided for all of its instances.
        var identity: String??
        var instances: [SidecarConfig.Upstream.Instance] = []
        for (instanceIndex, instance) in upstream.instances.enumerated() {
            let instancePath = "\(path).instances[\(instanceIndex)]"
            let problems = [
                ("address", InstanceSyntax.addressProblem(instance.address)),
                ("port", InstanceSyntax.portProblem(Int(instance.port))),
                ("protocol", InstanceSyntax.protocolProblem(instance.protocol)),
            ]
            for (field, problem) in problems {
                if let problem {
                    return .failure(SnapshotRefusal("\(instancePath).\(field): \(problem)"))
                }
            }
            let kind = UpstreamProtocol(rawValue: instance.protocol) ?? .http2  // checked above
            if let previous = protocolKind, previous != kind {
                return .failure(SnapshotRefusal(
                    "\(instancePath).protocol: \(kind) differs from the service's other instances (\(previous))"))
            }
            protocolKind = kind
            let instanceIdentity = instance.identity.isEmpty ? nil : instance.identity
            if let instanceIdentity, SPIFFEID.parse(instanceIdentity)?.service != upstream.service {
                return .failure(SnapshotRefusal(
                    "\(instancePath).identity: \"\(instanceIdentity)\" is not the identity of service \"\(upstream.service)\""))
            }
            if let previous = identity, previous != instanceIdentity {
                return .failure(SnapshotRefusal(
                    "\(instancePath).identity: the service mixes instances in the mesh (mutual TLS) with instances outside it (plaintext); "
                        + "register the outside ones under a service of their own"))
            }
            identity = instanceIdentity
            instances.append(.init(
                address: HostPort(host: instance.address, port: Int(instance.port)), labels: instance.labels,
                identity: instanceIdentity))
        }
        var policy: ServicePolicy?
        if !upstream.policyJson.isEmpty {
            do {
                policy = try ResourceLoader.decodePolicy(json: upstream.policyJson)
            } catch {
                return .failure(SnapshotRefusal(at: "\(path).policy_json", error))
            }
            if let policy, policy.service != upstream.service {
                return .failure(SnapshotRefusal(
                    "\(path).policy_json.service: the policy is for \"\(policy.service)\", not \"\(upstream.service)\""))
            }
        }
        return .success(SidecarConfig.Upstream(protocolKind: protocolKind ?? .http2, instances: instances, policy: policy))
    }
}

/// Why a sidecar refused a snapshot, as sent back in a Nack.
struct SnapshotRefusal: Error, Equatable, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }

    /// A resource spec in the snapshot at `path` that does not decode: its first issue, at its path inside the spec.
    init(at path: String, _ errors: ConfigErrors) {
        let first = errors.issues.first.map { $0.path.isEmpty ? ": \($0.message)" : ".\($0.path): \($0.message)" } ?? ""
        self.init("\(path)\(first)")
    }
}
