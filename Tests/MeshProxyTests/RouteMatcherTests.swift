import MeshConfig
import NIOHTTP1
import Testing

@testable import MeshProxy

@Suite struct RouteMatcherTests {
    private func headers(_ pairs: [(String, String)] = []) -> HTTPHeaders { HTTPHeaders(pairs) }

    @Test func pathOfTargetDropsQueryAndAbsoluteForm() {
        #expect(RouteMatcher.path(ofTarget: "/a/b?x=1") == "/a/b")
        #expect(RouteMatcher.path(ofTarget: "http://host:8080/a?q") == "/a")
        #expect(RouteMatcher.path(ofTarget: "http://host") == "/")
        #expect(RouteMatcher.path(ofTarget: "/frag#x") == "/frag")
    }

    @Test func prefixExactAndMethods() {
        let prefix = RouteMatcher(RouteMatch(pathPrefix: "/api/"))
        #expect(prefix.matches(method: .GET, path: "/api/users", headers: headers()))
        #expect(!prefix.matches(method: .GET, path: "/apix", headers: headers()))
        let exact = RouteMatcher(RouteMatch(path: "/healthz", methods: ["GET"]))
        #expect(exact.matches(method: .GET, path: "/healthz", headers: headers()))
        #expect(!exact.matches(method: .POST, path: "/healthz", headers: headers()))
        #expect(!exact.matches(method: .GET, path: "/healthz/x", headers: headers()))
    }

    /// Bytes, not characters: `/` and a combining mark after it are one Swift
    /// character, which would hide the prefix from a character comparison.
    @Test func pathsCompareAsBytes() {
        let prefix = RouteMatcher(RouteMatch(pathPrefix: "/admin/"))
        #expect(prefix.matches(method: .GET, path: "/admin/\u{0337}x", headers: headers()))
        let exact = RouteMatcher(RouteMatch(path: "/caf\u{E9}"))
        #expect(!exact.matches(method: .GET, path: "/cafe\u{301}", headers: headers()), "canonically equal, other bytes")
    }

    @Test func grpcSugar() {
        let service = RouteMatcher(RouteMatch(grpc: GRPCMatch(service: "user.UserService")))
        #expect(service.matches(method: .POST, path: "/user.UserService/GetUser", headers: headers()))
        #expect(!service.matches(method: .POST, path: "/user.UserServiceX/GetUser", headers: headers()))
        let method = RouteMatcher(RouteMatch(grpc: GRPCMatch(service: "user.UserService", method: "GetUser")))
        #expect(method.matches(method: .POST, path: "/user.UserService/GetUser", headers: headers()))
        #expect(!method.matches(method: .POST, path: "/user.UserService/ListUsers", headers: headers()))
    }

    @Test func headerConditions() {
        let matcher = RouteMatcher(RouteMatch(headers: [
            HeaderMatch(name: "x-canary", condition: .exact("1")),
            HeaderMatch(name: "x-user", condition: .prefix("team-")),
            HeaderMatch(name: "x-debug", condition: .present(false)),
        ]))
        #expect(matcher.matches(method: .GET, path: "/", headers: headers([("X-Canary", "1"), ("x-user", "team-a")])))
        #expect(!matcher.matches(method: .GET, path: "/", headers: headers([("x-canary", "2"), ("x-user", "team-a")])))
        #expect(!matcher.matches(method: .GET, path: "/", headers: headers([("x-canary", "1"), ("x-user", "other")])))
        #expect(!matcher.matches(method: .GET, path: "/", headers: headers([("x-canary", "1"), ("x-user", "team-a"), ("x-debug", "")])))
    }

    @Test func firstMatchingRouteWinsAndSplitFollowsWeights() throws {
        let config = try ConfigLoader.decode(yaml: """
            listeners:
              - name: in
                listen: 127.0.0.1:1
                routes:
                  - { match: { pathPrefix: /a }, cluster: one }
                  - { match: { pathPrefix: / }, split: [ { cluster: one, weight: 90 }, { cluster: two, weight: 10 } ] }
            clusters:
              - { name: one, endpoints: [127.0.0.1:2] }
              - { name: two, endpoints: [127.0.0.1:3] }
            """)
        let table = RoutingTable(config: config, generation: 1)
        let listener = try #require(table.listeners["in"])
        let first = try #require(listener.route(method: .GET, path: "/abc", headers: headers()))
        #expect(first.index == 0)
        let split = try #require(listener.route(method: .GET, path: "/z", headers: headers()))
        var random = FastRandom(seed: 9)
        let toTwo = (0..<10000).filter { _ in split.pickCluster(using: &random) == 1 }.count
        #expect(abs(toTwo - 1000) < 150)
        // Its routes lead to two services: a request answered before a cluster is picked counts for none.
        #expect(listener.destinationService == nil)
    }

    /// A sidecar's listener leads to one service, whatever subsets its
    /// routes split over: a denied or unrouted request counts for it.
    @Test func aListenerWhoseRoutesLeadToOneServiceNamesIt() throws {
        let config = try ConfigLoader.decode(yaml: """
            listeners:
              - name: outbound_user
                listen: 127.0.0.1:1
                routes:
                  - { match: { pathPrefix: /a }, split: [ { cluster: user-v1, weight: 90 }, { cluster: user-v2, weight: 10 } ] }
                  - { match: { pathPrefix: / }, cluster: user }
            clusters:
              - { name: user, endpoints: [127.0.0.1:2] }
              - { name: user-v1, service: user, endpoints: [127.0.0.1:3] }
              - { name: user-v2, service: user, endpoints: [127.0.0.1:4] }
            """)
        let table = RoutingTable(config: config, generation: 1)
        #expect(table.listeners["outbound_user"]?.destinationService == "user")
    }

    /// What a route index matched must never be counted for the route that
    /// later takes its place: a listener's routes keep their version while
    /// they stay, and take the new table's generation when they change.
    @Test func routesKeepTheirVersionUntilTheyChange() throws {
        func config(_ prefix: String) throws -> ProxyConfig {
            try ConfigLoader.decode(yaml: """
                listeners:
                  - { name: a, listen: 127.0.0.1:1, routes: [ { match: { pathPrefix: \(prefix) }, cluster: c } ] }
                  - { name: b, listen: 127.0.0.1:2, routes: [ { cluster: c } ] }
                clusters: [ { name: c, endpoints: [127.0.0.1:3] } ]
                """)
        }
        let first = RoutingTable(config: try config("/x"), generation: 1)
        let same = RoutingTable(config: try config("/x"), generation: 2, previous: first)
        let changed = RoutingTable(config: try config("/y"), generation: 3, previous: same)
        #expect(first.listeners["a"]?.routesVersion == 1 && same.listeners["a"]?.routesVersion == 1)
        #expect(changed.listeners["a"]?.routesVersion == 3 && changed.listeners["b"]?.routesVersion == 1)

        let stats = LoopStats()
        let a = stats.label("a")
        stats.routesPublished(same)
        stats.routeMatched(listener: a, routesVersion: 1, route: 0)
        stats.routeMatched(listener: a, routesVersion: 1, route: 0)
        #expect(stats.routeMatches[a]?.counts == [2])
        // The routes changed: their count starts again, and a stray count of the old version is dropped.
        stats.routesPublished(changed)
        stats.routeMatched(listener: a, routesVersion: 1, route: 0)
        #expect(stats.routeMatches[a]?.counts == [0] && stats.routeMatches[a]?.routesVersion == 3)
        stats.routeMatched(listener: a, routesVersion: 3, route: 0)
        stats.routeMatched(listener: a, routesVersion: 3, route: 7)
        #expect(stats.routeMatches[a]?.counts == [1])
        // A listener the config dropped takes its counts with it.
        stats.routesPublished(RoutingTable(config: try ConfigLoader.decode(yaml: """
            listeners: [ { name: b, listen: 127.0.0.1:2, routes: [ { cluster: c } ] } ]
            clusters: [ { name: c, endpoints: [127.0.0.1:3] } ]
            """), generation: 4, previous: changed))
        #expect(stats.routeMatches[a] == nil)
    }
}
