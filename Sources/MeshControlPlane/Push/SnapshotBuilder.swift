import MeshAPI

/// What one sidecar is sent: for each service its app calls (and each
/// service their policies route to), the healthy instances registered now
/// and the service's policy. A pure function of the control plane's state, so a
/// snapshot is the same whoever asks for it and whenever.
enum SnapshotBuilder {
    static func snapshot(
        version: UInt64, services: [String], registry: Registry, policyJSON: (String) -> String,
        heartbeatIntervalMillis: Int64
    ) -> Swiftmesh_V1_Snapshot {
        .with { snapshot in
            snapshot.version = version
            snapshot.heartbeatIntervalMs = UInt32(clamping: heartbeatIntervalMillis)
            snapshot.upstreams = services.map { service in
                .with {
                    $0.service = service
                    $0.instances = registry.healthyInstances(of: service).map(\.message)
                    $0.policyJson = policyJSON(service)
                }
            }
        }
    }
}
