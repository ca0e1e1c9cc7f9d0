import Foundation
import MeshConfig

/// Sidecar injection, the decision of a Kubernetes mutating admission
/// webhook: for a pod labeled `swiftmesh.io/inject: "true"`, a JSONPatch
/// (RFC 6902) that adds the sidecar as a native sidecar container (an init
/// container with `restartPolicy: Always`, started, and found ready on
/// `/ready`, before the app's containers start), with its token, its root
/// certificate and its environment. Pure: AdmissionReview JSON in, AdmissionReview JSON out.
///
/// What the pod says, in annotations (label `swiftmesh.io/inject` selects it):
/// - `swiftmesh.io/service`: its service (default: the label
///   `app.kubernetes.io/name`, else `app`);
/// - `swiftmesh.io/app-port`: the app's port (default: the first container's first port);
/// - `swiftmesh.io/app-protocol`: `auto` (default), `http1` or `http2`;
/// - `swiftmesh.io/upstreams`: the services the app calls and the local port
///   it calls each at, `user=7001,alive=7002` (or `NAME=IP:PORT`);
/// - `swiftmesh.io/labels`: more instance labels, `zone=a,tier=web`; the pod
///   label `version`, if any, is one without being named.
public struct SidecarInjector: Sendable {
    public struct Settings: Sendable, Equatable {
        /// The image the sidecar runs (the one SwiftMesh image, every role).
        public var image: String
        /// The control plane's sidecar API, as pods reach it.
        public var controlPlane: HostPort

        public static let defaultImage = "swiftmesh:latest"
        public static let defaultControlPlane = HostPort(host: "swiftmesh-control-plane.swiftmesh-system.svc", port: 15010)

        public init(image: String = Settings.defaultImage, controlPlane: HostPort = Settings.defaultControlPlane) {
            self.image = image
            self.controlPlane = controlPlane
        }
    }

    public static let injectLabel = "swiftmesh.io/inject"
    public static let statusAnnotation = "swiftmesh.io/status"
    public static let containerName = "swiftmesh-sidecar"
    /// Where other sidecars reach the pod's sidecar (the instance's registered port).
    public static let inboundPort = 15006
    /// The sidecar's admin listener: `/ready` for the probes, and the control plane's `explain`.
    public static let adminPort = 15000
    /// The Secret in the pod's namespace holding the join token of service
    /// NAME: `swiftmesh-join-NAME`, key `token`.
    public static func tokenSecret(of service: String) -> String { "swiftmesh-join-\(service)" }
    /// The ConfigMap in the pod's namespace holding the mesh's root
    /// certificate (key `root.pem`), which the control plane must prove itself with.
    public static let rootConfigMap = "swiftmesh-ca-root"

    public let settings: Settings

    public init(settings: Settings) {
        self.settings = settings
    }

    /// An AdmissionReview the webhook cannot answer at all (HTTP 400).
    public struct MalformedReview: Error, CustomStringConvertible {
        public var description: String
    }

    /// The AdmissionReview response to `body`, an AdmissionReview request.
    /// A pod that asks for injection with a mistake is refused, with the
    /// annotation at fault and its fix; any other pod passes unchanged.
    public func review(_ body: Data) throws(MalformedReview) -> Data {
        guard let review = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw MalformedReview(description: "the body is not a JSON object")
        }
        guard review["kind"] as? String == "AdmissionReview" else {
            throw MalformedReview(description: "kind: expected AdmissionReview")
        }
        guard let request = review["request"] as? [String: Any], let uid = request["uid"] as? String else {
            throw MalformedReview(description: "request.uid: an AdmissionReview request needs one")
        }
        var response: [String: Any] = ["uid": uid, "allowed": true]
        if let pod = request["object"] as? [String: Any] {
            switch patch(for: pod) {
            case .success(let operations?):
                let patchJSON = (try? JSONSerialization.data(withJSONObject: operations, options: [.sortedKeys])) ?? Data("[]".utf8)
                response["patchType"] = "JSONPatch"
                response["patch"] = patchJSON.base64EncodedString()
            case .success(nil):
                break
            case .failure(let refusal):
                response["allowed"] = false
                response["status"] = ["code": 400, "message": "swiftmesh sidecar injection: \(refusal.description)"]
            }
        }
        let answer: [String: Any] = [
            "apiVersion": review["apiVersion"] as? String ?? "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        ]
        return (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])) ?? Data()
    }

    /// Why a pod that asked for injection cannot have it.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The JSONPatch operations that inject the sidecar into `pod`; nil for
    /// a pod that did not ask, or has its sidecar already.
    public func patch(for pod: [String: Any]) -> Result<[[String: Any]]?, Refusal> {
        let metadata = pod["metadata"] as? [String: Any] ?? [:]
        let labels = metadata["labels"] as? [String: String] ?? [:]
        let annotations = metadata["annotations"] as? [String: String] ?? [:]
        let spec = pod["spec"] as? [String: Any] ?? [:]
        let containers = spec["containers"] as? [[String: Any]] ?? []
        let initContainers = spec["initContainers"] as? [[String: Any]] ?? []
        guard labels[Self.injectLabel] == "true" else { return .success(nil) }
        if annotations[Self.statusAnnotation] == "injected"
            || (initContainers + containers).contains(where: { $0["name"] as? String == Self.containerName }) {
            return .success(nil)
        }
        let sidecar: [String: Any]
        do {
            sidecar = try container(labels: labels, annotations: annotations, containers: containers)
        } catch {
            return .failure(error)
        }
        var operations: [[String: Any]] = []
        if metadata["annotations"] == nil {
            operations.append(["op": "add", "path": "/metadata/annotations", "value": [Self.statusAnnotation: "injected"]])
        } else {
            operations.append(["op": "add", "path": "/metadata/annotations/\(Self.pointerEscaped(Self.statusAnnotation))", "value": "injected"])
        }
        // First among the init containers: the app's own init containers may call through it.
        if spec["initContainers"] == nil {
            operations.append(["op": "add", "path": "/spec/initContainers", "value": [sidecar]])
        } else {
            operations.append(["op": "add", "path": "/spec/initContainers/0", "value": sidecar])
        }
        let volume: [String: Any] = ["name": "swiftmesh-ca-root", "configMap": ["name": Self.rootConfigMap]]
        if spec["volumes"] == nil {
            operations.append(["op": "add", "path": "/spec/volumes", "value": [volume]])
        } else {
            operations.append(["op": "add", "path": "/spec/volumes/-", "value": volume])
        }
        return .success(operations)
    }

    /// The sidecar container for a pod with these labels, annotations and app containers.
    private func container(
        labels: [String: String], annotations: [String: String], containers: [[String: Any]]
    ) throws(Refusal) -> [String: Any] {
        guard let service = annotations["swiftmesh.io/service"] ?? labels["app.kubernetes.io/name"] ?? labels["app"] else {
            throw Refusal(description: "swiftmesh.io/service: the pod names no service; add this annotation (or an app label)")
        }
        let appPort: Int
        if let text = annotations["swiftmesh.io/app-port"] {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw Refusal(description: "swiftmesh.io/app-port: \"\(text)\" is not a port from 1 to 65535")
            }
            appPort = port
        } else {
            let ports = containers.first?["ports"] as? [[String: Any]] ?? []
            guard let port = ports.first?["containerPort"] as? Int else {
                throw Refusal(description: "swiftmesh.io/app-port: the first container declares no port; add this annotation with the app's port")
            }
            appPort = port
        }
        // The pod's containers share one network: an app that binds every
        // address would take the sidecar's ports whatever address it is called at.
        for reserved in [Self.inboundPort, Self.adminPort] where appPort == reserved {
            throw Refusal(description: "swiftmesh.io/app-port: \(reserved) is the sidecar's own; move the app to another port")
        }
        let appProtocol = annotations["swiftmesh.io/app-protocol"] ?? "auto"
        guard appProtocol == "auto" || UpstreamProtocol(rawValue: appProtocol) != nil else {
            throw Refusal(description: "swiftmesh.io/app-protocol: \"\(appProtocol)\" is none of auto, http1, http2")
        }
        // The sidecar's own rules, as `swiftmesh sidecar` checks them, on the
        // arguments the pod gets; the pod's IP stands in for $(POD_IP).
        let spec: SidecarSpec
        do {
            spec = SidecarSpec(
                service: service, app: HostPort(host: "127.0.0.1", port: appPort),
                appProtocol: UpstreamProtocol(rawValue: appProtocol),
                inbound: HostPort(host: "0.0.0.0", port: Self.inboundPort),
                advertise: HostPort(host: Self.podIPStandIn, port: Self.inboundPort),
                upstreams: try Self.upstreams(annotations["swiftmesh.io/upstreams"]).map(SidecarSpec.upstream(parsing:)),
                admin: HostPort(host: Self.podIPStandIn, port: Self.adminPort),
                labels: try SidecarSpec.labels(parsing: Self.instanceLabels(
                    podVersion: labels["version"], annotation: annotations["swiftmesh.io/labels"])))
            if let problem = spec.problem {
                throw problem
            }
        } catch let problem as SidecarSpec.Problem {
            throw Self.refusal(problem)
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            throw Refusal(description: "\(error)")
        }
        // Kubernetes puts the pod's IP in $(POD_IP): the address other sidecars and the control plane reach.
        let specArguments = spec.arguments
        let args = ["sidecar", "--control-plane", "\(settings.controlPlane)", "--control-plane-ca", "/etc/swiftmesh/ca/root.pem"]
            + specArguments.indices.map { index in
                let value = specArguments[index]
                let isPodAddress = index > 0 && ["--advertise", "--admin"].contains(specArguments[index - 1])
                return isPodAddress ? value.replacingOccurrences(of: Self.podIPStandIn, with: "$(POD_IP)") : value
            }
        let ready: [String: Any] = ["httpGet": ["path": "/ready", "port": Self.adminPort]]
        return [
            "name": Self.containerName,
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            // A native sidecar: it starts before the app's containers and stops after them.
            "restartPolicy": "Always",
            "ports": [
                ["name": "mesh", "containerPort": Self.inboundPort, "protocol": "TCP"],
                ["name": "mesh-admin", "containerPort": Self.adminPort, "protocol": "TCP"],
            ],
            "env": [
                ["name": "POD_IP", "valueFrom": ["fieldRef": ["fieldPath": "status.podIP"]]],
                ["name": "SWIFTMESH_TOKEN",
                 "valueFrom": ["secretKeyRef": ["name": Self.tokenSecret(of: service), "key": "token"]]],
            ],
            "volumeMounts": [["name": "swiftmesh-ca-root", "mountPath": "/etc/swiftmesh/ca", "readOnly": true]],
            // The app starts once the sidecar has its first configuration.
            "startupProbe": ready.merging(["periodSeconds": 1, "failureThreshold": 120]) { $1 },
            "readinessProbe": ready.merging(["periodSeconds": 5]) { $1 },
            "resources": [
                "requests": ["cpu": "50m", "memory": "32Mi"],
                "limits": ["memory": "256Mi"],
            ],
            "securityContext": [
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": ["drop": ["ALL"]],
            ],
        ]
    }

    /// An address no pod has (TEST-NET-1, RFC 5737) standing for the
    /// pod's IP while the sidecar's arguments are checked.
    static let podIPStandIn = "192.0.2.1"

    /// A sidecar argument's problem, named by the annotation it came from.
    static func refusal(_ problem: SidecarSpec.Problem) -> Refusal {
        let annotation =
            switch problem.argument.split(separator: " ").first {
            case "--service": "swiftmesh.io/service"
            case "--app": "swiftmesh.io/app-port"
            case "--upstream": "swiftmesh.io/upstreams"
            case "--label": "swiftmesh.io/labels"
            default: "the sidecar's \(problem.argument)"
            }
        return Refusal(description: "\(annotation): \(problem.value.map { "\"\($0)\": " } ?? "")\(problem.message)")
    }

    /// `user=7001,alive=10.0.0.9:7002` as the sidecar's `--upstream NAME=HOST:PORT`
    /// values: a port alone is on the pod's loopback.
    static func upstreams(_ annotation: String?) throws(Refusal) -> [String] {
        guard let annotation, !annotation.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
        return try annotation.split(separator: ",").map { (entry: Substring) throws(Refusal) -> String in
            let entry = entry.trimmingCharacters(in: .whitespaces)
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw Refusal(description: "swiftmesh.io/upstreams: \"\(entry)\" has no =; write NAME=PORT (or NAME=IP:PORT), such as user=7001, separated by commas")
            }
            if let port = Int(parts[1]), (1...65535).contains(port) {
                return "\(parts[0])=127.0.0.1:\(port)"
            }
            guard HostPortSyntax.parse(parts[1]) != nil else {
                throw Refusal(description: "swiftmesh.io/upstreams: \"\(entry)\": \"\(parts[1])\" is neither a port nor IP:PORT; write NAME=PORT (or NAME=IP:PORT), such as user=7001, separated by commas")
            }
            return entry
        }
    }

    /// The instance's labels as `--label` values: the pod's `version`, then those of the annotation.
    static func instanceLabels(podVersion: String?, annotation: String?) throws(Refusal) -> [String] {
        let entries = (annotation ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard let podVersion else { return entries }
        if entries.contains(where: { $0.hasPrefix("version=") }) {
            throw Refusal(description: "swiftmesh.io/labels: version comes from the pod's version label already; name it once")
        }
        return ["version=\(podVersion)"] + entries
    }

    /// A JSON Pointer token: `~` and `/` escaped (RFC 6901).
    static func pointerEscaped(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
