import Foundation
import Testing
@testable import MeshConfig

@Suite("The documented example and defaults")
struct ExampleConfigTests {
    static let example = """
        admin:
          listen: 127.0.0.1:9901
        drainTimeout: 15s
        listeners:
          - name: ingress
            listen: 127.0.0.1:8080
            limits: { maxRequestHeaderBytes: 61440, maxRequestHeaders: 100 }
            routes:
              - match: { pathPrefix: /user.UserService/ }
                cluster: user
                timeout: 2s
                requestHeadersToAdd: { x-env: prod }
                requestHeadersToRemove: [x-debug]
              - match: { pathPrefix: / }
                split:
                  - { cluster: user, weight: 90 }
                  - { cluster: user-canary, weight: 10 }
        clusters:
          - name: user
            protocol: http2
            loadBalancing: ring_hash
            hashHeader: x-user-id
            connectTimeout: 1s
            endpoints: [127.0.0.1:50051, { address: 127.0.0.1:50052, weight: 2 }]
          - name: user-canary
            protocol: http2
            dns: { name: user.default.svc.cluster.local, port: 50051, refresh: 5s, resolver: 127.0.0.1:5353 }
        """

    static let expected = ProxyConfig(
        admin: AdminConfig(listen: HostPort(host: "127.0.0.1", port: 9901)),
        listeners: [
            ListenerConfig(
                name: "ingress",
                listen: HostPort(host: "127.0.0.1", port: 8080),
                routes: [
                    RouteConfig(
                        match: RouteMatch(pathPrefix: "/user.UserService/"),
                        action: .cluster("user"),
                        timeout: .seconds(2),
                        requestHeadersToAdd: [HeaderValue(name: "x-env", value: "prod")],
                        requestHeadersToRemove: ["x-debug"]
                    ),
                    RouteConfig(
                        match: RouteMatch(pathPrefix: "/"),
                        action: .split([
                            WeightedCluster(cluster: "user", weight: 90),
                            WeightedCluster(cluster: "user-canary", weight: 10),
                        ])
                    ),
                ],
                limits: ListenerLimits(maxRequestHeaderBytes: 61440, maxRequestHeaders: 100)
            ),
        ],
        clusters: [
            ClusterConfig(
                name: "user",
                protocolKind: .http2,
                discovery: .staticEndpoints([
                    StaticEndpoint(address: HostPort(host: "127.0.0.1", port: 50051)),
                    StaticEndpoint(address: HostPort(host: "127.0.0.1", port: 50052), weight: 2),
                ]),
                settings: ClusterSettings(loadBalancing: .ringHash, hashHeader: "x-user-id", connectTimeout: .seconds(1))
            ),
            ClusterConfig(
                name: "user-canary",
                protocolKind: .http2,
                discovery: .dns(DNSDiscovery(
                    name: "user.default.svc.cluster.local",
                    port: 50051,
                    refresh: .seconds(5),
                    resolver: HostPort(host: "127.0.0.1", port: 5353)
                ))
            ),
        ],
        drainTimeout: .seconds(15)
    )

    @Test func exampleDecodesToTheModel() throws {
        #expect(try ConfigLoader.decode(yaml: Self.example) == Self.expected)
    }

    /// The design brief's example pairs `round_robin` with `hashHeader`,
    /// which its own rule forbids; the rule wins and says how to fix it.
    @Test func hashHeaderWithRoundRobinIsTheOnlyIssueInTheLiteralExample() {
        let literal = Self.example.replacingOccurrences(of: "loadBalancing: ring_hash", with: "loadBalancing: round_robin")
        #expect(issues(literal).map(\.path) == ["clusters[0].hashHeader"])
    }

    @Test func omittedKeysTakeTheirDefaults() throws {
        let config = try ConfigLoader.decode(yaml: """
            listeners:
              - name: ingress
                listen: 127.0.0.1:8080
                routes: [{ cluster: user }]
            clusters:
              - name: user
                endpoints: [127.0.0.1:9000]
              - name: named
                dns: { name: user.svc, port: 80 }
            """)
        #expect(config.admin == nil)
        #expect(config.drainTimeout == .seconds(15))
        let listener = try #require(config.listeners.first)
        #expect(listener.limits == ListenerLimits(maxRequestHeaderBytes: 61440, maxRequestHeaders: 100))
        let route = try #require(listener.routes.first)
        #expect(route.match == RouteMatch())
        #expect(route.timeout == nil)
        #expect(route.requestHeadersToAdd.isEmpty)
        #expect(route.requestHeadersToRemove.isEmpty)
        let user = try #require(config.cluster(named: "user"))
        #expect(user.protocolKind == .http1)
        #expect(user.settings.loadBalancing == .roundRobin)
        #expect(user.settings.hashHeader == nil)
        #expect(user.settings.connectTimeout == .seconds(1))
        #expect(user.discovery == .staticEndpoints([StaticEndpoint(address: HostPort(host: "127.0.0.1", port: 9000), weight: 1)]))
        let named = try #require(config.cluster(named: "named"))
        #expect(named.discovery == .dns(DNSDiscovery(name: "user.svc", port: 80, refresh: .seconds(5), resolver: nil)))
    }

    @Test func oneLimitGivenKeepsTheOtherDefault() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [
            Fixture.listener(extra: ", limits: { maxRequestHeaders: 50 }"),
        ]))
        #expect(config.listeners.first?.limits == ListenerLimits(maxRequestHeaderBytes: 61440, maxRequestHeaders: 50))
    }

    @Test func emptyOrNullMatchMatchesEverything() throws {
        for route in ["{ match: {}, cluster: user }", "{ match: , cluster: user }", "{ match: ~, cluster: user }"] {
            let config = try ConfigLoader.decode(yaml: Fixture.listenerDocument(routes: [route]))
            #expect(config.listeners.first?.routes.first?.match == RouteMatch(), "\(route)")
        }
    }

    @Test func matchConditionsDecodeAndNormalize() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.listenerDocument(routes: [
            """
            { match: { path: /health, methods: [get, Post], headers: [{ name: X-Canary, exact: "1" }, \
            { name: x-tenant, prefix: acme- }, { name: x-debug, present: false }] }, cluster: user }
            """,
            "{ match: { grpc: { service: user.UserService, method: GetUser } }, cluster: user }",
            "{ match: { grpc: { service: user.UserService } }, cluster: user }",
        ]))
        let routes = try #require(config.listeners.first?.routes)
        #expect(routes[0].match == RouteMatch(
            path: "/health",
            methods: ["GET", "POST"],
            headers: [
                HeaderMatch(name: "x-canary", condition: .exact("1")),
                HeaderMatch(name: "x-tenant", condition: .prefix("acme-")),
                HeaderMatch(name: "x-debug", condition: .present(false)),
            ]
        ))
        #expect(routes[1].match == RouteMatch(grpc: GRPCMatch(service: "user.UserService", method: "GetUser")))
        #expect(routes[2].match == RouteMatch(grpc: GRPCMatch(service: "user.UserService")))
    }

    @Test func headersToAddAreInNameOrderWithLowerCaseNames() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.route(
            "cluster: user, requestHeadersToAdd: { X-Zeta: z, x-alpha: 1, x-empty: '' }, requestHeadersToRemove: [X-Debug, x-trace]"
        ))
        let route = try #require(config.listeners.first?.routes.first)
        #expect(route.requestHeadersToAdd == [
            HeaderValue(name: "x-alpha", value: "1"),
            HeaderValue(name: "x-empty", value: ""),
            HeaderValue(name: "x-zeta", value: "z"),
        ])
        #expect(route.requestHeadersToRemove == ["x-debug", "x-trace"])
    }

    // Found by FuzzConfig: headers added out of name order read back from
    // the admin's /config (keys sorted) as another route.
    @Test func headersToAddOutOfNameOrderSurviveTheRenderedConfig() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.route(
            "cluster: user, requestHeadersToAdd: { x-served-by: swiftmesh, weight: 10 }"
        ))
        #expect(try ConfigLoader.decode(yaml: ConfigJSON.render(config)) == config)
    }

    @Test func ipv6AddressesDecode() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(
            top: "admin: { listen: \"[::1]:9901\" }\n",
            listeners: [Fixture.listener(listen: "\"[::1]:8080\"")],
            clusters: ["{ name: user, endpoints: [\"[2001:db8::1]:50051\"] }"]
        ))
        #expect(config.admin?.listen == HostPort(host: "::1", port: 9901))
        #expect(config.listeners.first?.listen == HostPort(host: "::1", port: 8080))
        #expect(config.clusters.first?.discovery == .staticEndpoints([StaticEndpoint(address: HostPort(host: "2001:db8::1", port: 50051))]))
    }

    @Test func anchorsAndAliasesAreFollowed() throws {
        let config = try ConfigLoader.decode(yaml: """
            listeners:
              - name: ingress
                listen: 127.0.0.1:8080
                routes: [{ cluster: user, timeout: &deadline 3s }]
              - name: internal
                listen: 127.0.0.1:8081
                routes: [{ cluster: user, timeout: *deadline }]
            clusters: [{ name: user, endpoints: [127.0.0.1:9000] }]
            """)
        #expect(config.listeners.map { $0.routes.first?.timeout } == [.seconds(3), .seconds(3)])
    }

    @Test func loadReadsAFile() throws {
        let path = try TemporaryFile.write(Self.example)
        defer { TemporaryFile.remove(path) }
        #expect(try ConfigLoader.load(path: path) == Self.expected)
    }
}
