import Testing
@testable import MeshConfig

@Suite("Authorization settings and AuthorizationPolicy resources")
struct AuthorizationConfigTests {
    /// The issue's example, as a user would write it.
    static let contractExample = """
        apiVersion: swiftmesh.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: { name: user-callers }
        spec:
          service: user
          default: deny
          rules:
            - from: [gateway]
              grpc: { service: user.UserService, methods: [GetUser, ListUsers] }
            - from: ["*"]
              paths: [/healthz]
        """

    private func spec(_ body: String) -> String {
        "apiVersion: swiftmesh.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: { name: user-callers }\nspec: \(body)\n"
    }

    @Test func theContractsExampleDecodesAndRoundTripsThroughJSON() throws {
        let resources = try ResourceLoader.decode(yaml: Self.contractExample)
        #expect(resources.map(\.kind) == [.authorizationPolicy])
        guard case .authorizationPolicy(let policy) = resources[0].spec else { return }
        #expect(policy == AuthorizationPolicy(service: "user", defaultAction: .deny, rules: [
            AuthorizationRule(from: ["gateway"], grpc: GRPCAuthorizationMatch(service: "user.UserService", methods: ["GetUser", "ListUsers"])),
            AuthorizationRule(from: ["*"], paths: ["/healthz"]),
        ]))
        #expect(resources[0].service == "user")
        #expect(try ResourceLoader.decodeAuthorizationPolicy(json: resources[0].specJSON) == policy)
    }

    @Test func defaultsAreDenyAndAllowRules() throws {
        let resources = try ResourceLoader.decode(yaml: spec("{ service: user, rules: [ { methods: [get] } ] }"))
        guard case .authorizationPolicy(let policy) = resources[0].spec else { return }
        #expect(policy.defaultAction == .deny)
        #expect(policy.rules == [AuthorizationRule(action: .allow, methods: ["GET"])])
    }

    @Test(arguments: [
        ("{ service: user, default: maybe }", "spec.default", "expected one of allow, deny"),
        ("{ service: user, rules: [ { from: [Gateway] } ] }", "spec.rules[0].from[0]", "a service name such as gateway"),
        ("{ service: user, rules: [ { from: [] } ] }", "spec.rules[0].from", "caller such as gateway"),
        ("{ service: user, rules: [ { paths: [/a/*/b] } ] }", "spec.rules[0].paths[0]", "* may only end a path"),
        ("{ service: user, rules: [ { paths: [healthz] } ] }", "spec.rules[0].paths[0]", "a path starting with"),
        ("{ service: user, rules: [ { grpc: { service: user.UserService }, paths: [/x] } ] }", "spec.rules[0].paths", "not both"),
        ("{ service: user, rules: [ { grpc: { methods: [GetUser] } } ] }", "spec.rules[0].grpc.service", "add the fully qualified service"),
        ("{ service: user, rules: [ { action: permit } ] }", "spec.rules[0].action", "expected one of allow, deny"),
        ("{ default: deny }", "spec.service", "add the service"),
    ])
    func mistakesNameTheField(body: String, path: String, message: String) {
        let found = resourceIssues(spec(body))
        #expect(found.count == 1)
        #expect(found.first?.path == path)
        #expect(found.first?.message.contains(message) == true, "\(found.first?.message ?? "no issue")")
    }

    @Test func aListenerCanCarryAuthorization() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(extra: """
            , authorization: { default: allow, trustDomain: example.org, rules: [ { action: deny, paths: ["/admin/*"] } ] }
            """)]))
        #expect(config.listeners[0].authorization == AuthorizationConfig(
            defaultAction: .allow, rules: [AuthorizationRule(action: .deny, paths: ["/admin/*"])], trustDomain: "example.org"))
        let bad = onlyIssue(Fixture.document(listeners: [Fixture.listener(extra: ", authorization: { trustDomain: Example }")]))
        #expect(bad?.path == "listeners[0].authorization.trustDomain")
    }

    @Test func aServiceHasOneAuthorizationPolicyPerApply() {
        let second = Self.contractExample.replacingOccurrences(of: "user-callers", with: "user-callers-2")
        let found = resourceIssues(Self.contractExample + "\n---\n" + second)
        #expect(found.map(\.path) == ["documents[1].spec.service"])
    }
}
