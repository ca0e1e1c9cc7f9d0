import Foundation
import MeshConfig
import Testing

@testable import MeshControlPlane

@Suite("Sidecar injection")
struct SidecarInjectorTests {
    private let injector = SidecarInjector(settings: .init(
        image: "swiftmesh:1", controlPlane: HostPort(host: "cp.mesh.svc", port: 15010)))

    private func pod(labels: [String: String], annotations: [String: String]? = nil, ports: [Int] = [8080]) -> [String: Any] {
        var metadata: [String: Any] = ["name": "web-1", "labels": labels]
        metadata["annotations"] = annotations
        return [
            "metadata": metadata,
            "spec": ["containers": [["name": "web", "image": "web:1", "ports": ports.map { ["containerPort": $0] }]]],
        ]
    }

    private func sidecarArgs(_ operations: [[String: Any]]?) -> [String] {
        let added = operations?.first { ($0["path"] as? String)?.hasPrefix("/spec/initContainers") == true }?["value"]
        let container = (added as? [[String: Any]])?.first ?? added as? [String: Any]
        return container?["args"] as? [String] ?? []
    }

    @Test func aLabeledPodGetsItsSidecarFromItsLabelsAndAnnotations() throws {
        let operations = try injector.patch(for: pod(
            labels: ["swiftmesh.io/inject": "true", "app": "web", "version": "v2"],
            annotations: ["swiftmesh.io/upstreams": "user=7001, alive=10.0.0.9:7002", "swiftmesh.io/app-protocol": "http1"])).get()
        #expect(operations?.map { $0["path"] as? String } == [
            "/metadata/annotations/swiftmesh.io~1status", "/spec/initContainers", "/spec/volumes",
        ])
        #expect(sidecarArgs(operations) == [
            "sidecar", "--control-plane", "cp.mesh.svc:15010", "--control-plane-ca", "/etc/swiftmesh/ca/root.pem",
            "--service", "web", "--app", "127.0.0.1:8080", "--app-protocol", "http1",
            "--inbound", "0.0.0.0:15006", "--advertise", "$(POD_IP):15006", "--admin", "$(POD_IP):15000",
            "--upstream", "user=127.0.0.1:7001", "--upstream", "alive=10.0.0.9:7002", "--label", "version=v2",
        ])
    }

    @Test func podsThatDidNotAskOrHaveTheirSidecarPass() throws {
        #expect(try injector.patch(for: pod(labels: ["app": "web"])).get() == nil)
        #expect(try injector.patch(for: pod(labels: ["swiftmesh.io/inject": "false", "app": "web"])).get() == nil)
        #expect(try injector.patch(for: pod(
            labels: ["swiftmesh.io/inject": "true", "app": "web"], annotations: ["swiftmesh.io/status": "injected"])).get() == nil)
    }

    @Test func mistakesNameTheAnnotationAndTheFix() {
        func refusal(_ labels: [String: String], _ annotations: [String: String] = [:], ports: [Int] = [8080]) -> String? {
            guard case .failure(let refusal) = injector.patch(
                for: pod(labels: ["swiftmesh.io/inject": "true"].merging(labels) { $1 }, annotations: annotations, ports: ports))
            else { return nil }
            return refusal.description
        }
        #expect(refusal([:]) == "swiftmesh.io/service: the pod names no service; add this annotation (or an app label)")
        #expect(refusal(["app": "web"], ports: [])
            == "swiftmesh.io/app-port: the first container declares no port; add this annotation with the app's port")
        #expect(refusal(["app": "web"], ["swiftmesh.io/app-port": "15000"])
            == "swiftmesh.io/app-port: 15000 is the sidecar's own; move the app to another port")
        #expect(refusal(["app": "web"], ["swiftmesh.io/upstreams": "user=15006"])
            == "swiftmesh.io/upstreams: \"user=127.0.0.1:15006\": 127.0.0.1:15006 is also where --inbound listens; give each its own port")
        #expect(refusal(["app": "web"], ["swiftmesh.io/upstreams": "user=8080"])
            == "swiftmesh.io/upstreams: \"user=127.0.0.1:8080\": 127.0.0.1:8080 is where the app listens (--app); give the upstream another port")
        #expect(refusal(["app": "web"], ["swiftmesh.io/upstreams": "user=7001,alive=7001"])
            == "swiftmesh.io/upstreams: \"alive=127.0.0.1:7001\": 127.0.0.1:7001 is also where --upstream user=127.0.0.1:7001 listens; give each its own port")
        #expect(refusal(["app": "web"], ["swiftmesh.io/upstreams": "user=abc"])
            == "swiftmesh.io/upstreams: \"user=abc\": \"abc\" is neither a port nor IP:PORT; write NAME=PORT (or NAME=IP:PORT), such as user=7001, separated by commas")
        #expect(refusal(["app": "web"], ["swiftmesh.io/upstreams": "user=localhost:7001"])
            == "swiftmesh.io/upstreams: \"user=localhost:7001\": \"localhost\" is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0")
        #expect(refusal(["app": "web"], ["swiftmesh.io/labels": "zone=a,zone=b"])
            == "swiftmesh.io/labels: \"zone=b\": zone is named twice; name each label once")
        #expect(refusal(["app": "web", "version": "v1"], ["swiftmesh.io/labels": "version=v2"])
            == "swiftmesh.io/labels: version comes from the pod's version label already; name it once")
        #expect(refusal(["app": "web"], ["swiftmesh.io/labels": "zone"])
            == "swiftmesh.io/labels: \"zone\": expected KEY=VALUE, such as version=v1")
    }

    @Test func aReviewAnswersWithTheRequestsUIDAndABase64Patch() throws {
        let request: [String: Any] = [
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": ["uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                        "object": pod(labels: ["swiftmesh.io/inject": "true", "app": "web"])],
        ]
        let answer = try JSONSerialization.jsonObject(
            with: try injector.review(try JSONSerialization.data(withJSONObject: request))) as? [String: Any]
        let response = answer?["response"] as? [String: Any]
        #expect(answer?["kind"] as? String == "AdmissionReview")
        #expect(response?["uid"] as? String == "705ab4f5-6393-11e8-b7cc-42010a800002")
        #expect(response?["allowed"] as? Bool == true)
        #expect(response?["patchType"] as? String == "JSONPatch")
        let patch = (response?["patch"] as? String).flatMap { Data(base64Encoded: $0) }
        #expect((try patch.map { try JSONSerialization.jsonObject(with: $0) } as? [[String: Any]])?.count == 3)
    }
}
