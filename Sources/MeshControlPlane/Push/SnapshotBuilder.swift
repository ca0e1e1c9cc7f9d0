import MeshAPI
import MeshConfig

/// What one sidecar is sent: for each service its app calls (and each
/// service their policies route to), the healthy instances registered now
/// and the service's policy; and the authorization policy of its own service. A pure function of the control plane's state, so a
/// snapshot is the same whoever asks for it and whenever.
enum SnapshotBuilder {
    static func snapshot(
        version: UInt64, services: [String], registry: Registry, policyJSON: (String) -> String,
        authorizationPolicyJSON: String, heartbeatIntervalMillis: Int64, trustDomain: String
    ) -> Swiftmesh_V1_Snapshot {
        .with { snapshot in
            snapshot.version = version
            snapshot.heartbeatIntervalMs = UInt32(clamping: heartbeatIntervalMillis)
            snapshot.authorizationPolicyJson = authorizationPolicyJSON
            snapshot.upstreams = services.map { service in
                .with {
                    $0.service = service
                    $0.instances = registry.stored(of: service).filter(\.healthy).map { stored in
                        var message = stored.instance.message
                        // A sidecar's instance proves its service's identity; an external one has none.
                        if stored.sidecarID != nil {
                            message.identity = SPIFFEID.service(service, trustDomain: trustDomain)
                        }
                        return message
                    }
                    $0.policyJson = policyJSON(service)
                }
            }
        }
    }
}
