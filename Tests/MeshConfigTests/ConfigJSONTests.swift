import Foundation
import Testing
@testable import MeshConfig

@Suite("Effective config as JSON")
struct ConfigJSONTests {
    private func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func rendersDefaultsWithConfigSpellings() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document())
        let root = try object(ConfigJSON.render(config))
        #expect(Set(root.keys) == ["drainTimeout", "listeners", "clusters"])
        #expect(root["drainTimeout"] as? String == "15s")

        let listener = try #require((root["listeners"] as? [[String: Any]])?.first)
        #expect(listener["name"] as? String == "ingress")
        #expect(listener["listen"] as? String == "127.0.0.1:8080")
        let limits = try #require(listener["limits"] as? [String: Any])
        #expect(limits["maxRequestHeaderBytes"] as? Int == 61440)
        #expect(limits["maxRequestHeaders"] as? Int == 100)
        let route = try #require((listener["routes"] as? [[String: Any]])?.first)
        #expect(Set(route.keys) == ["match", "cluster"])
        #expect((route["match"] as? [String: Any])?.isEmpty == true)
        #expect(route["cluster"] as? String == "user")

        let cluster = try #require((root["clusters"] as? [[String: Any]])?.first)
        #expect(cluster["protocol"] as? String == "http1")
        #expect(cluster["loadBalancing"] as? String == "round_robin")
        #expect(cluster["connectTimeout"] as? String == "1s")
        #expect(cluster["hashHeader"] == nil)
        let endpoint = try #require((cluster["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["address"] as? String == "127.0.0.1:9000")
        #expect(endpoint["weight"] as? Int == 1)
    }

    @Test func rendersEveryKindOfValue() throws {
        let root = try object(ConfigJSON.render(ExampleConfigTests.expected))
        #expect((root["admin"] as? [String: Any])?["listen"] as? String == "127.0.0.1:9901")
        let routes = try #require((root["listeners"] as? [[String: Any]])?.first?["routes"] as? [[String: Any]])
        #expect(routes[0]["timeout"] as? String == "2s")
        #expect(routes[0]["requestHeadersToAdd"] as? [String: String] == ["x-env": "prod"])
        #expect(routes[0]["requestHeadersToRemove"] as? [String] == ["x-debug"])
        let split = try #require(routes[1]["split"] as? [[String: Any]])
        #expect(split.map { $0["cluster"] as? String } == ["user", "user-canary"])
        #expect(split.map { $0["weight"] as? Int } == [90, 10])
        let clusters = try #require(root["clusters"] as? [[String: Any]])
        #expect(clusters[0]["loadBalancing"] as? String == "ring_hash")
        #expect(clusters[0]["hashHeader"] as? String == "x-user-id")
        let dns = try #require(clusters[1]["dns"] as? [String: Any])
        #expect(dns["refresh"] as? String == "5s")
        #expect(dns["resolver"] as? String == "127.0.0.1:5353")
        #expect(dns["port"] as? Int == 50051)
    }

    @Test func keysAreSorted() throws {
        let json = ConfigJSON.render(ExampleConfigTests.expected)
        let order = ["\"admin\"", "\"clusters\"", "\"drainTimeout\"", "\"listeners\""].compactMap { json.range(of: $0)?.lowerBound }
        #expect(order.count == 4)
        #expect(order == order.sorted())
    }

    /// JSON is YAML flow syntax, so the rendered config must decode back to
    /// the same model: proof that keys and values are spelled as in the file.
    @Test func renderedJSONDecodesAsConfig() throws {
        let configs = [
            ExampleConfigTests.expected,
            try ConfigLoader.decode(yaml: Fixture.listenerDocument(routes: [
                """
                { match: { path: /a, methods: [GET], headers: [{ name: x-a, exact: "1" }, \
                { name: x-b, prefix: p }, { name: x-c, present: true }] }, cluster: user, timeout: 1m30s }
                """,
                "{ match: { grpc: { service: a.B, method: C } }, cluster: user }",
                """
                { cluster: user, retries: { attempts: 2, on: [retriable-status-codes, unavailable],                 retriableStatusCodes: [409], perTryTimeout: 300ms, budget: { ratio: 0.5, minPerSecond: 3 } } }
                """,
            ])),
            try ConfigLoader.decode(yaml: Fixture.cluster(
                "name: user, endpoints: [127.0.0.1:1], panicThreshold: 0, outlierDetection: "
                    + "{ consecutiveErrors: 3, interval: 2s, successRate: { stdevFactor: 2.5 } }, "
                    + "healthCheck: { http: { path: /healthz, expectedStatuses: [204] }, interval: 3s }")),
            try ConfigLoader.decode(yaml: Fixture.cluster(
                "name: user, endpoints: [127.0.0.1:1], protocol: http2, healthCheck: { grpc: { service: a.B } }")),
            try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:1], healthCheck: { tcp: {} }")),
            try ConfigLoader.decode(yaml: Fixture.document(
                top: "admin: { listen: \"[::1]:9901\" }\ndrainTimeout: 0s\n",
                listeners: [Fixture.listener(listen: "\"[::]:8080\"")]
            )),
        ]
        for config in configs {
            #expect(try ConfigLoader.decode(yaml: ConfigJSON.render(config)) == config)
        }
    }
}
