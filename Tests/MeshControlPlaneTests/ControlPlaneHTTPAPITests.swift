import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MeshAPI
import Testing

@testable import MeshControlPlane

@Suite("Control plane HTTP API")
struct ControlPlaneHTTPAPITests {
    private let policy = """
        apiVersion: swiftmesh.dev/v1alpha1
        kind: ServicePolicy
        metadata: { name: user }
        spec: { service: user, loadBalancing: random }
        """

    private func withAPI(
        _ controlPlane: ControlPlane? = nil, adminToken: Bool = false,
        _ test: @escaping @Sendable (any TestClientProtocol, MeshIdentity) async throws -> Void
    ) async throws {
        let controlPlane = controlPlane ?? ControlPlane(store: nil, logger: Logger(label: "test"))
        let identity = try TestIdentity.make(adminToken: adminToken)
        let app = Application(router: ControlPlaneHTTPAPI(controlPlane: controlPlane, identity: identity).router())
        try await app.test(.router) { client in try await test(client, identity) }
    }

    private func withAPI(
        _ controlPlane: ControlPlane? = nil, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        try await withAPI(controlPlane, adminToken: false) { client, _ in try await test(client) }
    }

    @Test func changesNeedTheAdminTokenReadingDoesNot() async throws {
        try await withAPI(adminToken: true) { client, identity in
            let token = try #require(identity.adminToken?.value)
            try await client.execute(uri: "/api/v1/resources", method: .post, body: ByteBuffer(string: policy)) { response in
                let body = try json(response)
                #expect(response.status == .unauthorized)
                #expect(body["error"] as? String != nil)
            }
            try await client.execute(
                uri: "/api/v1/resources", method: .post, headers: [.authorization: "Bearer wrong"],
                body: ByteBuffer(string: policy)
            ) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(
                uri: "/api/v1/resources", method: .post, headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: policy)
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/resources", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/ca", method: .get) { response in
                let body = try json(response)
                #expect(body["trustDomain"] as? String == "swiftmesh.local")
                #expect((body["rootCertificate"] as? String)?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
                #expect(!String(buffer: response.body).contains("PRIVATE KEY"))
            }
        }
    }

    @Test func joinTokensAreShownOnceAndGrantOneService() async throws {
        try await withAPI { client, identity in
            let body = ByteBuffer(string: #"{"service": "user", "ttl": "1h"}"#)
            try await client.execute(uri: "/api/v1/tokens", method: .post, body: body) { response in
                #expect(response.status == .created)
                let answer = try json(response)
                let token = try #require(answer["token"] as? String)
                #expect(token.hasPrefix("smj_"))
                let granted = try await identity.joinTokens.service(grantedBy: token)
                #expect(granted == "user")
            }
            let madeUp = try await identity.joinTokens.service(grantedBy: "smj_made-up")
            #expect(madeUp == nil)
            try await client.execute(
                uri: "/api/v1/tokens", method: .post, body: ByteBuffer(string: #"{"service": "User!"}"#)
            ) { response in
                let body = try json(response)
                #expect(response.status == .badRequest)
                #expect(body["path"] as? String == "service")
            }
            try await client.execute(
                uri: "/api/v1/tokens", method: .post, body: ByteBuffer(string: #"{"service": "user", "ttl": "10s"}"#)
            ) { response in
                let body = try json(response)
                #expect(response.status == .badRequest)
                #expect(body["path"] as? String == "ttl")
            }
        }
    }

    @Test func aSidecarsInstanceCannotBeTakenOverAsExternal() async throws {
        let controlPlane = ControlPlane(store: nil, logger: Logger(label: "test"))
        let (_, sink) = AsyncStream.makeStream(of: Swiftmesh_V1_Snapshot.self)
        _ = try await controlPlane.open(.with {
            $0.sidecarID = "user-1"
            $0.instance = .with {
                $0.service = "user"
                $0.address = "10.0.0.1"
                $0.port = 15001
                $0.protocol = "http2"
            }
        }, sink: sink)
        try await withAPI(controlPlane) { client in
            let body = ByteBuffer(string: #"{"address": "10.0.0.1:15001"}"#)
            try await client.execute(uri: "/api/v1/services/user/instances", method: .post, body: body) { response in
                let body = try json(response)
                #expect(response.status == .conflict)
                #expect(body["error"] as? String == "10.0.0.1:15001 is the instance of sidecar user-1; stop that sidecar, or register another address")
            }
        }
    }

    private func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func appliedResourcesAreListedAndDeleted() async throws {
        try await withAPI { client in
            try await client.execute(uri: "/api/v1/resources", method: .post, body: ByteBuffer(string: policy)) { response in
                #expect(response.status == .ok)
                let body = try json(response)
                #expect(body["applied"] as? [[String: String]] == [["kind": "ServicePolicy", "name": "user", "result": "created"]])
            }
            try await client.execute(uri: "/api/v1/resources/policies/user", method: .get) { response in
                let resource = try json(response)
                #expect(resource["kind"] as? String == "ServicePolicy")
                #expect((resource["spec"] as? [String: Any])?["loadBalancing"] as? String == "random")
                // What the policy leaves out shows with the mesh's default.
                let effective = (resource["status"] as? [String: Any])?["effective"] as? [String: Any]
                #expect(effective?["loadBalancing"] as? String == "random")
                #expect(effective?["connectTimeout"] as? String == "1s")
                #expect((effective?["outlierDetection"] as? [String: Any])?["consecutiveErrors"] as? Int == 5)
            }
            try await client.execute(uri: "/api/v1/services", method: .get) { response in
                let services = try json(response)["services"] as? [[String: Any]]
                #expect(services?.first?["name"] as? String == "user")
                #expect(services?.first?["policy"] as? String == "user")
            }
            try await client.execute(uri: "/api/v1/resources/policies/user", method: .delete) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/resources/policies/user", method: .get) { response in
                let body = try json(response)
                #expect(response.status == .notFound)
                #expect(body["error"] as? String == "no ServicePolicy named user")
            }
        }
    }

    @Test func aBadResourceIsRefusedWithItsFieldPathAndNothingIsStored() async throws {
        try await withAPI { client in
            let bad = policy.replacingOccurrences(of: "loadBalancing: random", with: "loadBalancing: fastest")
            try await client.execute(uri: "/api/v1/resources", method: .post, body: ByteBuffer(string: policy + "\n---\n" + bad.replacingOccurrences(of: "name: user", with: "name: user-b"))) { response in
                #expect(response.status == .badRequest)
                let body = try json(response)
                #expect(body["error"] as? String == "the resources were refused; nothing was stored")
                let issues = body["issues"] as? [[String: String]]
                #expect(issues?.first?["path"] == "documents[1].spec.loadBalancing")
            }
            try await client.execute(uri: "/api/v1/resources", method: .get) { response in
                let body = try json(response)
                #expect((body["resources"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test func externalInstancesAreRegisteredAndRemoved() async throws {
        try await withAPI { client in
            let body = ByteBuffer(string: #"{"address": "192.0.2.9:8080", "labels": {"zone": "a"}}"#)
            try await client.execute(uri: "/api/v1/services/billing/instances", method: .post, body: body) { response in
                #expect(response.status == .created)
                let body = try json(response)
                #expect(body["registeredBy"] as? String == "external")
            }
            try await client.execute(uri: "/api/v1/instances", method: .get) { response in
                let instances = try json(response)["instances"] as? [[String: Any]]
                #expect(instances?.map { $0["address"] as? String } == ["192.0.2.9:8080"])
                #expect(instances?.first?["protocol"] as? String == "http1")
            }
            let hostName = ByteBuffer(string: #"{"address": "billing.example:8080"}"#)
            try await client.execute(uri: "/api/v1/services/billing/instances", method: .post, body: hostName) { response in
                #expect(response.status == .badRequest)
                let body = try json(response)
                #expect(body["path"] as? String == "address")
            }
            try await client.execute(uri: "/api/v1/services/billing/instances/192.0.2.9:8080", method: .delete) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/services/billing/instances/192.0.2.9:8080", method: .delete) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func anUnknownKindSaysWhichOnesExist() async throws {
        try await withAPI { client in
            try await client.execute(uri: "/api/v1/resources/routes", method: .get) { response in
                let body = try json(response)
                #expect(response.status == .notFound)
                #expect(body["error"] as? String == "unknown kind \"routes\"; use policies, authorizationpolicies")
            }
        }
    }
}
