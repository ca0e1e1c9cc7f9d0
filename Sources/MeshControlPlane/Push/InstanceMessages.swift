import MeshAPI
import MeshConfig

/// The registry's instances in and out of the sidecar API's messages. What a
/// sidecar sends is checked here, so the registry only holds instances that
/// other sidecars can reach.
extension RegisteredInstance {
    /// The instance a Hello names, or why it cannot be registered (the text a
    /// sidecar sees in its stream's error status).
    static func from(_ message: Swiftmesh_V1_Instance) -> Result<RegisteredInstance, HelloRefusal> {
        if let problem = ServiceNameSyntax.problem(message.service) {
            return .failure(HelloRefusal("instance.service: \(problem)"))
        }
        guard HostPortSyntax.isIPLiteral(message.address) else {
            return .failure(HelloRefusal("instance.address: \"\(message.address)\" is not an IP address; "
                + "advertise the address other sidecars reach this one at, such as 10.0.0.7"))
        }
        guard (1...65535).contains(message.port) else {
            return .failure(HelloRefusal("instance.port: \(message.port) is not a port; use 1 to 65535"))
        }
        guard UpstreamProtocol(rawValue: message.protocol) != nil else {
            return .failure(HelloRefusal("instance.protocol: \"\(message.protocol)\" is not one of http1, http2"))
        }
        return .success(RegisteredInstance(
            service: message.service, address: message.address, port: Int(message.port),
            protocolName: message.protocol, labels: message.labels))
    }

    var message: Swiftmesh_V1_Instance {
        .with {
            $0.service = service
            $0.address = key.address
            $0.port = UInt32(key.port)
            $0.protocol = protocolName
            $0.labels = labels
        }
    }
}

/// Why a sidecar's Hello was refused.
struct HelloRefusal: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
