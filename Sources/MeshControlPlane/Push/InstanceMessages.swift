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
        if let problem = InstanceSyntax.addressProblem(message.address) {
            return .failure(HelloRefusal("instance.address: \(problem) (the sidecar's --advertise)"))
        }
        if let problem = InstanceSyntax.portProblem(Int(message.port)) {
            return .failure(HelloRefusal("instance.port: \(problem)"))
        }
        if let problem = InstanceSyntax.protocolProblem(message.protocol) {
            return .failure(HelloRefusal("instance.protocol: \(problem)"))
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
