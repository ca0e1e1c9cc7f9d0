import Testing
@testable import MeshConfig

@Suite("Validation rules report the exact field path")
struct RuleIssueTests {
    // MARK: Cluster references

    @Test func unknownClusterListsKnownClustersInConfigOrder() {
        let yaml = Fixture.document(
            listeners: [Fixture.listener(routes: ["{ match: { path: /a }, cluster: user }", "{ cluster: usr }"])],
            clusters: ["{ name: user, endpoints: [127.0.0.1:1] }", "{ name: alive, endpoints: [127.0.0.1:2] }"]
        )
        #expect(issues(yaml) == [ConfigIssue(
            path: "listeners[0].routes[1].cluster",
            message: "unknown cluster \"usr\" (known: user, alive)"
        )])
    }

    @Test func unknownClusterInASplitEntry() {
        let yaml = Fixture.listenerDocument(routes: ["{ split: [{ cluster: user, weight: 1 }, { cluster: canary, weight: 1 }] }"])
        #expect(issues(yaml) == [ConfigIssue(
            path: "listeners[0].routes[0].split[1].cluster",
            message: "unknown cluster \"canary\" (known: user)"
        )])
    }

    @Test func aClusterWithOtherIssuesStillCountsAsDefined() {
        let found = issues(Fixture.cluster("name: user, connectTimeout: fast, endpoints: [127.0.0.1:1]"))
        #expect(found.map(\.path) == ["clusters[0].connectTimeout"])
    }

    // MARK: Route actions and splits

    @Test func routeNeedsExactlyOneOfClusterAndSplit() {
        #expect(onlyIssue(Fixture.route("match: { pathPrefix: / }")) == ConfigIssue(
            path: "listeners[0].routes[0]",
            message: "has neither cluster nor split; add e.g. \"cluster: user\" to say where matched requests go"
        ))
        #expect(onlyIssue(Fixture.route("cluster: user, split: [{ cluster: user, weight: 1 }]"))?.path == "listeners[0].routes[0]")
    }

    @Test func splitNeedsEntriesWithPositiveWeights() {
        #expect(onlyIssue(Fixture.route("split: []"))?.path == "listeners[0].routes[0].split")
        #expect(onlyIssue(Fixture.route("split: [{ cluster: user, weight: 0 }]")) == ConfigIssue(
            path: "listeners[0].routes[0].split[0].weight",
            message: "expected a positive integer, got 0"
        ))
        #expect(onlyIssue(Fixture.route("split: [{ cluster: user, weight: -3 }]"))?.path == "listeners[0].routes[0].split[0].weight")
        #expect(onlyIssue(Fixture.route("split: [{ cluster: user, weight: 2.5 }]"))?.message == "expected a positive integer, got 2.5")
        #expect(onlyIssue(Fixture.route("split: [{ cluster: user }]"))?.path == "listeners[0].routes[0].split[0].weight")
        #expect(onlyIssue(Fixture.route("split: [{ cluster: user, weight: 1000001 }]"))?.message
            == "expected a positive integer up to 1000000, got 1000001")
    }

    // MARK: Durations

    @Test func durationsMustParse() {
        #expect(onlyIssue(Fixture.route("cluster: user, timeout: 2 seconds")) == ConfigIssue(
            path: "listeners[0].routes[0].timeout",
            message: "expected a duration such as 250ms, 2s or 1m30s, got \"2 seconds\""
        ))
        #expect(onlyIssue(Fixture.document(top: "drainTimeout: 30\n")) == ConfigIssue(
            path: "drainTimeout",
            message: "expected a duration such as 250ms, 2s or 1m30s, got 30 (add a unit: h, m, s, ms, us or ns)"
        ))
    }

    @Test func timeoutsMustBeAboveZero() {
        #expect(onlyIssue(Fixture.route("cluster: user, timeout: 0s")) == ConfigIssue(
            path: "listeners[0].routes[0].timeout",
            message: "expected a duration above zero such as 2s, got 0s"
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, connectTimeout: 0ms, endpoints: [127.0.0.1:1]"))?.path
            == "clusters[0].connectTimeout")
    }

    @Test func zeroDrainTimeoutIsAllowed() throws {
        #expect(try ConfigLoader.decode(yaml: Fixture.document(top: "drainTimeout: 0s\n")).drainTimeout == .seconds(0))
    }

    @Test func dnsRefreshHasAFloor() {
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: user.svc, port: 80, refresh: 50ms }")) == ConfigIssue(
            path: "clusters[0].dns.refresh",
            message: "expected a duration of at least 100ms, got 50ms"
        ))
        #expect(issues(Fixture.cluster("name: user, dns: { name: user.svc, port: 80, refresh: 100ms }")).isEmpty)
    }

    // MARK: Addresses and ports

    @Test func portsMustBeInRange() {
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: user.svc, port: 70000 }")) == ConfigIssue(
            path: "clusters[0].dns.port",
            message: "expected a port 1-65535, got 70000"
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: user.svc, port: 0 }"))?.path == "clusters[0].dns.port")
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(listen: "127.0.0.1:0")])) == ConfigIssue(
            path: "listeners[0].listen",
            message: "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got \"127.0.0.1:0\": the port 0 is outside 1-65535"
        ))
    }

    @Test func listenAddressesMustBeIPLiterals() {
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(listen: "localhost:8080")]))?.message
            == "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got \"localhost:8080\": \"localhost\" is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0")
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(listen: "\"::1:8080\"")]))?.message
            == "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got \"::1:8080\": put IPv6 addresses in brackets, e.g. [::1]:8080")
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(listen: "8080")]))?.message
            == "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got 8080: add the port after a colon, e.g. 127.0.0.1:8080")
    }

    @Test func staticEndpointHostNamesPointAtDNSDiscovery() {
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [user.default.svc:50051]")) == ConfigIssue(
            path: "clusters[0].endpoints[0]",
            message: "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got \"user.default.svc:50051\": static endpoints must be IP addresses; to resolve \"user.default.svc\", replace endpoints with dns: { name: user.default.svc, port: 50051 }"
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [{ address: backend:80 }]"))?.path == "clusters[0].endpoints[0].address")
    }

    @Test func dnsNamesAndResolvers() {
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: \"user.svc:80\", port: 80 }"))?.message
            == "expected a DNS name such as user.default.svc.cluster.local, got \"user.svc:80\": put the port in its own key, port: 80")
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: 10.0.0.1, port: 80 }"))?.message
            == "expected a DNS name such as user.default.svc.cluster.local, got \"10.0.0.1\": an IP address needs no resolving; list it under endpoints instead of dns")
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: user.svc, port: 80, resolver: ns.local:53 }"))?.path
            == "clusters[0].dns.resolver")
    }

    // MARK: Clusters

    @Test func clusterNeedsExactlyOneOfEndpointsAndDNS() {
        #expect(onlyIssue(Fixture.cluster("name: user")) == ConfigIssue(
            path: "clusters[0]",
            message: "has neither endpoints nor dns; add e.g. \"endpoints: [127.0.0.1:8080]\" or \"dns: { name: user.svc, port: 8080 }\""
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:1], dns: { name: user.svc, port: 80 }")) == ConfigIssue(
            path: "clusters[0]",
            message: "has both endpoints and dns; keep one (endpoints lists fixed IP addresses, dns resolves a name)"
        ))
    }

    @Test func ringHashNeedsAHashHeaderAndOnlyItMayHaveOne() {
        #expect(onlyIssue(Fixture.cluster("name: user, loadBalancing: ring_hash, endpoints: [127.0.0.1:1]"))?.path
            == "clusters[0].hashHeader")
        #expect(onlyIssue(Fixture.cluster("name: user, hashHeader: x-user-id, endpoints: [127.0.0.1:1]")) == ConfigIssue(
            path: "clusters[0].hashHeader",
            message: "only used with loadBalancing: ring_hash, but this cluster uses round_robin; remove hashHeader or set loadBalancing: ring_hash"
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, loadBalancing: least_request, hashHeader: x-a, endpoints: [127.0.0.1:1]"))?.path
            == "clusters[0].hashHeader")
    }

    @Test func ringHashHeaderIsLowerCased() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster("name: user, loadBalancing: ring_hash, hashHeader: X-User-ID, endpoints: [127.0.0.1:1]"))
        #expect(config.clusters.first?.settings.hashHeader == "x-user-id")
    }

    @Test func namesAreRestrictedToLabelSafeCharacters() {
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(name: "\"my listener\"")])) == ConfigIssue(
            path: "listeners[0].name",
            message: "expected a name of letters, digits, \".\", \"_\" and \"-\", got \"my listener\""
        ))
    }

    // MARK: Duplicates

    @Test func duplicateListenerNames() {
        let yaml = Fixture.document(listeners: [
            Fixture.listener(listen: "127.0.0.1:8080"),
            Fixture.listener(listen: "127.0.0.1:8081"),
        ])
        #expect(issues(yaml) == [ConfigIssue(
            path: "listeners[1].name",
            message: "duplicate listener name \"ingress\", already used by listeners[0].name; give each listener its own name"
        )])
    }

    @Test func duplicateClusterNames() {
        let yaml = Fixture.document(clusters: [Fixture.userCluster, "{ name: user, dns: { name: user.svc, port: 80 } }"])
        #expect(issues(yaml) == [ConfigIssue(
            path: "clusters[1].name",
            message: "duplicate cluster name \"user\", already used by clusters[0].name; give each cluster its own name"
        )])
    }

    @Test func duplicateListenAddresses() {
        let twoListeners = Fixture.document(listeners: [
            Fixture.listener(name: "a", listen: "127.0.0.1:8080"),
            Fixture.listener(name: "b", listen: "127.0.0.1:8080"),
        ])
        #expect(issues(twoListeners) == [ConfigIssue(
            path: "listeners[1].listen",
            message: "127.0.0.1:8080 is already used by listeners[0].listen; give each listener its own address"
        )])
        let sameAsAdmin = Fixture.document(top: "admin: { listen: 127.0.0.1:8080 }\n")
        #expect(onlyIssue(sameAsAdmin)?.path == "listeners[0].listen")
        let sameIPv6SpelledTwice = Fixture.document(listeners: [
            Fixture.listener(name: "a", listen: "\"[::1]:8080\""),
            Fixture.listener(name: "b", listen: "\"[0:0:0:0:0:0:0:1]:8080\""),
        ])
        #expect(onlyIssue(sameIPv6SpelledTwice)?.path == "listeners[1].listen")
    }

    @Test func wildcardListenAddressOverlapsSpecificOnes() {
        let yaml = Fixture.document(listeners: [
            Fixture.listener(name: "a", listen: "0.0.0.0:8080"),
            Fixture.listener(name: "b", listen: "127.0.0.1:8080"),
        ])
        #expect(issues(yaml) == [ConfigIssue(
            path: "listeners[1].listen",
            message: "127.0.0.1:8080 overlaps 0.0.0.0:8080 at listeners[0].listen, since 0.0.0.0 and [::] bind the port on every local address; use another port"
        )])
        let differentPorts = Fixture.document(listeners: [
            Fixture.listener(name: "a", listen: "0.0.0.0:8080"),
            Fixture.listener(name: "b", listen: "127.0.0.1:8081"),
        ])
        #expect(issues(differentPorts).isEmpty)
        let v4WildcardAndV6 = Fixture.document(listeners: [
            Fixture.listener(name: "a", listen: "0.0.0.0:8080"),
            Fixture.listener(name: "b", listen: "\"[::1]:8080\""),
        ])
        #expect(issues(v4WildcardAndV6).isEmpty)
    }

    // MARK: Matches

    @Test func pathsMustStartWithSlash() {
        #expect(onlyIssue(Fixture.route("match: { pathPrefix: api }, cluster: user")) == ConfigIssue(
            path: "listeners[0].routes[0].match.pathPrefix",
            message: "expected a path starting with \"/\", got \"api\""
        ))
        #expect(onlyIssue(Fixture.route("match: { path: \"/a?b=1\" }, cluster: user"))?.path == "listeners[0].routes[0].match.path")
    }

    @Test func pathAndPathPrefixExcludeEachOtherAndGRPC() {
        #expect(onlyIssue(Fixture.route("match: { path: /a, pathPrefix: /b }, cluster: user"))?.path == "listeners[0].routes[0].match")
        #expect(onlyIssue(Fixture.route("match: { pathPrefix: /, grpc: { service: a.B } }, cluster: user")) == ConfigIssue(
            path: "listeners[0].routes[0].match.grpc",
            message: "cannot be combined with path or pathPrefix, since it already matches the path /<service>/<method>; remove one or the other"
        ))
        #expect(onlyIssue(Fixture.route("match: { grpc: { method: GetUser } }, cluster: user"))?.path
            == "listeners[0].routes[0].match.grpc.service")
        #expect(onlyIssue(Fixture.route("match: { grpc: { service: /a.B } }, cluster: user"))?.message
            == "expected a fully qualified service name such as user.UserService, got \"/a.B\"")
    }

    @Test func headerConditionsNeedExactlyOneTest() {
        #expect(onlyIssue(Fixture.route("match: { headers: [{ name: x-a }] }, cluster: user"))?.path
            == "listeners[0].routes[0].match.headers[0]")
        #expect(onlyIssue(Fixture.route("match: { headers: [{ name: x-a, exact: b, present: true }] }, cluster: user")) == ConfigIssue(
            path: "listeners[0].routes[0].match.headers[0]",
            message: "has exact and present; keep exactly one of exact, prefix or present"
        ))
        #expect(onlyIssue(Fixture.route("match: { headers: [{ name: x-a, present: maybe }] }, cluster: user")) == ConfigIssue(
            path: "listeners[0].routes[0].match.headers[0].present",
            message: "expected true or false, got \"maybe\""
        ))
    }

    @Test func methodsAreTokensAndNotEmpty() {
        #expect(onlyIssue(Fixture.route("match: { methods: [] }, cluster: user"))?.path == "listeners[0].routes[0].match.methods")
        #expect(onlyIssue(Fixture.route("match: { methods: [GET, \"PO ST\"] }, cluster: user"))?.path
            == "listeners[0].routes[0].match.methods[1]")
    }

    // MARK: Header names and edits

    @Test func headerNamesMustBeTokens() {
        #expect(onlyIssue(Fixture.route("match: { headers: [{ name: \"x canary\", present: true }] }, cluster: user")) == ConfigIssue(
            path: "listeners[0].routes[0].match.headers[0].name",
            message: "expected a header name of letters, digits and !#$%&'*+-.^_`|~, got \"x canary\""
        ))
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToAdd: { \"x(y)\": 1 }"))?.path
            == "listeners[0].routes[0].requestHeadersToAdd.x(y)")
    }

    @Test(arguments: ["connection", "Keep-Alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "host", "content-length"])
    func hopByHopHeadersCannotBeEdited(name: String) {
        let lower = name.lowercased()
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToAdd: { \(name): x }")) == ConfigIssue(
            path: "listeners[0].routes[0].requestHeadersToAdd.\(name)",
            message: "\"\(lower)\" is managed by the proxy (connection handling or message framing), so routes cannot add or remove it; remove this entry"
        ))
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToRemove: [x-ok, \(name)]"))?.path
            == "listeners[0].routes[0].requestHeadersToRemove[1]")
    }

    @Test func pseudoHeadersCannotBeEdited() {
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToAdd: { \":authority\": example.com }")) == ConfigIssue(
            path: "listeners[0].routes[0].requestHeadersToAdd.:authority",
            message: "\":authority\" is a pseudo-header, which the proxy derives from the request itself; name a regular header instead"
        ))
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToRemove: [\":path\"]"))?.path
            == "listeners[0].routes[0].requestHeadersToRemove[0]")
    }

    @Test func addedHeadersAreUniqueAndSingleLine() {
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToAdd: { x-env: a, X-Env: b }")) == ConfigIssue(
            path: "listeners[0].routes[0].requestHeadersToAdd.X-Env",
            message: "sets the same header as listeners[0].routes[0].requestHeadersToAdd.x-env (names are case-insensitive); keep one"
        ))
        #expect(onlyIssue(Fixture.route("cluster: user, requestHeadersToAdd: { x-env: \"a\\r\\nx-evil: 1\" }")) == ConfigIssue(
            path: "listeners[0].routes[0].requestHeadersToAdd.x-env",
            message: "header values must not contain line breaks or NUL characters"
        ))
    }
}
