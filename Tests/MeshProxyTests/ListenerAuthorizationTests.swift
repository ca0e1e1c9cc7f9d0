import MeshConfig
import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite("Listener authorization")
struct ListenerAuthorizationTests {
    private let gateway = "spiffe://swiftmesh.local/service/gateway"
    private let alive = "spiffe://swiftmesh.local/service/alive"

    /// The example policy for the user service.
    private var userCallers: ListenerAuthorization {
        ListenerAuthorization(AuthorizationConfig(defaultAction: .deny, rules: [
            AuthorizationRule(from: ["gateway"], grpc: GRPCAuthorizationMatch(service: "user.UserService", methods: ["GetUser", "ListUsers"])),
            AuthorizationRule(from: ["*"], paths: ["/healthz"]),
        ]))
    }

    @Test func theGatewayMayGetUsersAndAliveMayNot() {
        let policy = userCallers
        #expect(policy.decide(identity: gateway, method: .POST, path: "/user.UserService/GetUser") == .init(allowed: true, rule: 0))
        #expect(policy.decide(identity: alive, method: .POST, path: "/user.UserService/GetUser") == .init(allowed: false, rule: nil))
        #expect(!policy.decide(identity: gateway, method: .POST, path: "/user.UserService/DeleteUser").allowed)
        #expect(!policy.decide(identity: gateway, method: .POST, path: "/user.UserService/GetUserX").allowed, "methods match whole")
        #expect(policy.decide(identity: alive, method: .GET, path: "/healthz") == .init(allowed: true, rule: 1))
        #expect(!policy.decide(identity: nil, method: .GET, path: "/healthz").allowed, "* is any caller with an identity")
        #expect(!policy.decide(identity: "spiffe://other.org/service/gateway", method: .POST, path: "/user.UserService/GetUser").allowed,
                "a service name belongs to the listener's trust domain")
    }

    @Test func theFirstMatchingRuleDecides() {
        let policy = ListenerAuthorization(AuthorizationConfig(defaultAction: .allow, rules: [
            AuthorizationRule(action: .deny, paths: ["/admin/*"], methods: ["POST"]),
            AuthorizationRule(action: .allow, from: ["spiffe://swiftmesh.local/service/ops-*"], paths: ["/admin/*"]),
        ]))
        #expect(!policy.decide(identity: "spiffe://swiftmesh.local/service/ops-1", method: .POST, path: "/admin/reset").allowed)
        #expect(policy.decide(identity: nil, method: .GET, path: "/admin/status").allowed)
        #expect(policy.decide(identity: nil, method: .POST, path: "/public").allowed)
    }

    @Test func pathRulesCompareBytes() {
        let pattern = ListenerAuthorization.PathPattern.prefix("/admin/")
        #expect(pattern.matches("/admin/\u{0337}x"))
    }

    @Test func aRuleWithoutFromTakesCallersWithoutIdentity() {
        let policy = ListenerAuthorization(AuthorizationConfig(defaultAction: .deny, rules: [AuthorizationRule(paths: ["/healthz"])]))
        #expect(policy.decide(identity: nil, method: .GET, path: "/healthz").allowed)
        #expect(!policy.decide(identity: nil, method: .GET, path: "/healthz/deep").allowed)
    }

    @Test func aGRPCServiceWithoutMethodsCoversAllOfThem() {
        let policy = ListenerAuthorization(AuthorizationConfig(defaultAction: .deny, rules: [
            AuthorizationRule(from: ["gate*"], grpc: GRPCAuthorizationMatch(service: "user.UserService")),
        ]))
        #expect(policy.decide(identity: gateway, method: .POST, path: "/user.UserService/Anything").allowed)
        #expect(!policy.decide(identity: gateway, method: .POST, path: "/user.UserServiceV2/Anything").allowed)
    }

    @Test(arguments: [
        ("*", "anything", true), ("a*c", "abc", true), ("a*c", "ac", true), ("a*c", "abcd", false),
        ("*-v2", "user-v2", true), ("u*r*", "user", true), ("user", "users", false), ("", "", true), ("a**", "a", true),
    ])
    func globs(pattern: String, text: String, matches: Bool) {
        #expect(Glob(pattern).matches(text) == matches)
    }
}

@Suite("LogRateLimit")
struct LogRateLimitTests {
    @Test func aFewLinesASecondAndTheRestCounted() {
        var limit = LogRateLimit(perSecond: 2)
        let second: UInt64 = 1_000_000_000
        #expect(limit.admit(nowNanoseconds: 5 * second) == 0)
        #expect(limit.admit(nowNanoseconds: 5 * second + 1) == 0)
        #expect(limit.admit(nowNanoseconds: 5 * second + 2) == nil)
        #expect(limit.admit(nowNanoseconds: 5 * second + 3) == nil)
        #expect(limit.admit(nowNanoseconds: 6 * second) == 2, "the next line says how many were not logged")
        #expect(limit.admit(nowNanoseconds: 6 * second + 1) == 0)
    }
}
