import Testing
@testable import MeshConfig

@Suite("ServicePolicy resources")
struct ServicePolicyTests {
    /// The issue's example, as a user would write it.
    static let contractExample = """
        apiVersion: swiftmesh.dev/v1alpha1
        kind: ServicePolicy
        metadata: { name: user }
        spec:
          service: user
          loadBalancing: least_request
          routes:
            - match: { grpc: { service: user.UserService } }
              timeout: 2s
              retries: { attempts: 2, on: [unavailable, connect-failure] }
              split: [ { service: user, subset: { version: v1 }, weight: 90 }, { service: user, subset: { version: v2 }, weight: 10 } ]
          circuitBreaker: { maxRequests: 1024 }
          outlierDetection: { consecutiveErrors: 5 }
        """

    @Test func theContractsExampleDecodes() throws {
        let resources = try ResourceLoader.decode(yaml: Self.contractExample)
        #expect(resources.count == 1)
        #expect(resources[0].name == "user")
        #expect(resources[0].kind == .servicePolicy)
        guard case .servicePolicy(let policy) = resources[0].spec else { return }
        #expect(policy.service == "user")
        #expect(policy.settings.loadBalancing == .leastRequest)
        #expect(policy.settings.circuitBreaker?.maxRequests == 1024)
        #expect(policy.settings.outlierDetection?.consecutiveErrors == 5)
        #expect(policy.routes.count == 1)
        #expect(policy.routes[0].match.grpc == GRPCMatch(service: "user.UserService"))
        #expect(policy.routes[0].timeout == .seconds(2))
        #expect(policy.routes[0].retries?.conditions == [.unavailable, .connectFailure])
        #expect(policy.routes[0].split == [
            PolicyDestination(service: "user", subset: ["version": "v1"], weight: 90),
            PolicyDestination(service: "user", subset: ["version": "v2"], weight: 10),
        ])
    }

    @Test func itsJSONReadsBackToTheSamePolicy() throws {
        guard case .servicePolicy(let policy) = try ResourceLoader.decode(yaml: Self.contractExample)[0].spec else { return }
        let json = ServicePolicyJSON.render(policy)
        #expect(try ResourceLoader.decodePolicy(json: json) == policy)
        #expect(!json.contains("\n"), "compact: one line")
    }

    /// What a policy leaves out keeps the mesh's defaults; what it sets
    /// replaces them, key by key.
    @Test func itsSettingsResolveOverTheMeshsDefaults() throws {
        let yaml = """
            apiVersion: swiftmesh.dev/v1alpha1
            kind: ServicePolicy
            metadata: { name: user }
            spec: { service: user, connectTimeout: 250ms, circuitBreaker: { maxRequests: 10 } }
            """
        guard case .servicePolicy(let policy) = try ResourceLoader.decode(yaml: yaml)[0].spec else { return }
        #expect(policy.settings == ClusterSettings.Overrides(
            connectTimeout: .milliseconds(250), circuitBreaker: CircuitBreakerConfig(maxRequests: 10)))
        var expected = ClusterSettings.meshDefaults
        expected.connectTimeout = .milliseconds(250)
        expected.circuitBreaker = CircuitBreakerConfig(maxRequests: 10)
        #expect(policy.effectiveSettings == expected)
        #expect(ServicePolicyJSON.renderEffectiveSettings(policy).contains(#""loadBalancing":"least_request""#))
    }

    /// `get policies -o yaml` prints the effective settings as the
    /// resource's status; applying that output again ignores it.
    @Test func aStatusIsIgnoredOnApply() throws {
        let yaml = """
            apiVersion: swiftmesh.dev/v1alpha1
            kind: ServicePolicy
            metadata: { name: user }
            spec: { service: user, loadBalancing: random }
            status: { effective: { loadBalancing: random, connectTimeout: 1s } }
            """
        guard case .servicePolicy(let policy) = try ResourceLoader.decode(yaml: yaml)[0].spec else { return }
        #expect(policy == ServicePolicy(service: "user", settings: .init(loadBalancing: .random)))
    }

    // Found by FuzzResources' sibling FuzzConfig: headers added out of name
    // order were stored (JSON, keys sorted) as another policy, so a replica
    // that read the store called the same apply `configured`.
    @Test func headersToAddOutOfNameOrderReadBackTheSame() throws {
        let yaml = """
            apiVersion: swiftmesh.dev/v1alpha1
            kind: ServicePolicy
            metadata: { name: user-headers }
            spec: { service: user, routes: [ { requestHeadersToAdd: { x-served-by: swiftmesh, weight: "10" } } ] }
            """
        guard case .servicePolicy(let policy) = try ResourceLoader.decode(yaml: yaml)[0].spec else {
            Issue.record("not a ServicePolicy")
            return
        }
        #expect(try ResourceLoader.decodePolicy(json: ServicePolicyJSON.render(policy)) == policy)
    }

    @Test func aSplitWithoutServiceMeansThePolicysService() throws {
        let yaml = """
            apiVersion: swiftmesh.dev/v1alpha1
            kind: ServicePolicy
            metadata: { name: user-canary }
            spec: { service: user, routes: [ { split: [ { subset: { version: v2 }, weight: 1 }, { service: user-next, weight: 1 } ] } ] }
            """
        guard case .servicePolicy(let policy) = try ResourceLoader.decode(yaml: yaml)[0].spec else { return }
        #expect(policy.routes[0].match == RouteMatch(), "no match: every request")
        #expect(policy.routes[0].split?.map(\.service) == ["user", "user-next"])
        #expect(policy.otherServices == ["user-next"])
    }

    @Test(arguments: [
        ("apiVersion: v1", "apiVersion", "is not an API version of SwiftMesh; use swiftmesh.dev/v1alpha1"),
        ("kind: ServicePolicyy", "kind", "did you mean \"ServicePolicy\""),
        ("metadata: { name: User }", "metadata.name", "is not a resource name"),
        ("spec: { service: user, routes: [ { timeout: 2 } ] }", "spec.routes[0].timeout", "add a unit"),
        ("spec: { service: user, routes: [ { split: [] } ] }", "spec.routes[0].split", "the list is empty"),
        ("spec: { service: user, routes: [ { split: [ { subset: { version: v1 } } ] } ] }", "spec.routes[0].split[0].weight", "missing"),
        ("spec: { service: user, hashHeader: x-user }", "spec.hashHeader", "only used with loadBalancing: ring_hash"),
        ("spec: { service: user, cluster: user }", "spec.cluster", "unknown key"),
        ("spec: { routes: [] }", "spec.service", "missing"),
    ])
    func mistakesNameTheField(_ change: String, _ path: String, _ fragment: String) {
        var fields = [
            "apiVersion": "apiVersion: swiftmesh.dev/v1alpha1", "kind": "kind: ServicePolicy",
            "metadata": "metadata: { name: user }", "spec": "spec: { service: user }",
        ]
        fields[String(change.prefix { $0 != ":" })] = change
        let yaml = ["apiVersion", "kind", "metadata", "spec"].compactMap { fields[$0] }.joined(separator: "\n")
        let found = resourceIssues(yaml)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path == path)
        #expect(found.first?.message.contains(fragment) == true, "\(found.first?.message ?? "no issue")")
    }

    @Test func severalDocumentsNameTheirIndexAndAreCheckedTogether() {
        let policy = { (name: String, service: String) in
            "apiVersion: swiftmesh.dev/v1alpha1\nkind: ServicePolicy\nmetadata: { name: \(name) }\nspec: { service: \(service) }\n"
        }
        let found = resourceIssues([policy("user", "user"), policy("user", "alive"), policy("user-2", "user")].joined(separator: "---\n"))
        #expect(found.map(\.path) == ["documents[1].metadata.name", "documents[2].spec.service"])
        #expect(found.first?.message.contains("ServicePolicy/user is also defined at documents[0]") == true)
        #expect(found.last?.message.contains("user already has ServicePolicy user") == true)
    }

    @Test func emptyInputIsAnIssue() {
        #expect(resourceIssues("").map(\.message) == ["no resources; write at least one, such as a ServicePolicy"])
    }

    @Test func kindsAreNamedByTheirWords() {
        #expect(MeshResource.Kind(word: "policies") == .servicePolicy)
        #expect(MeshResource.Kind(word: "ServicePolicy") == .servicePolicy)
        #expect(MeshResource.Kind(word: "routes") == nil)
    }
}
