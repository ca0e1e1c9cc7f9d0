import Testing
@testable import MeshConfig

@Suite("Shape errors: unknown keys, wrong types, missing keys, YAML syntax")
struct StructureIssueTests {
    @Test func unknownKeySuggestsTheClosestKnownKey() {
        let yaml = Fixture.document(listeners: [
            "{ name: ingress, listen: 127.0.0.1:8080, routs: [{ cluster: user }], routes: [{ cluster: user }] }",
        ])
        #expect(issues(yaml) == [ConfigIssue(path: "listeners[0].routs", message: "unknown key (did you mean \"routes\"?)")])
    }

    @Test func unknownKeySuggestionIgnoresCaseAndSeparators() {
        #expect(onlyIssue(Fixture.route("match: { path_prefix: /a }, cluster: user"))?.message
            == "unknown key (did you mean \"pathPrefix\"?)")
        #expect(onlyIssue("Listeners: []\nlisteners: [\(Fixture.listener())]\nclusters: [\(Fixture.userCluster)]")
            == ConfigIssue(path: "Listeners", message: "unknown key (did you mean \"listeners\"?)"))
    }

    @Test func unknownKeyWithoutNearMatchListsTheKnownKeys() {
        #expect(onlyIssue(Fixture.document(top: "metrics: {}\n")) == ConfigIssue(
            path: "metrics",
            message: "unknown key; the keys here are admin, drainTimeout, accessLog, tracing, listeners, clusters"
        ))
    }

    @Test func wrongTypesSayWhatWasExpected() {
        let yaml = Fixture.cluster("name: user, endpoints: [127.0.0.1:50051, { address: 127.0.0.1:50052, weight: two }]")
        #expect(issues(yaml) == [ConfigIssue(
            path: "clusters[0].endpoints[1].weight",
            message: "expected a positive integer, got \"two\""
        )])
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [{ address: 127.0.0.1:1, weight: \"2\" }]"))?.message
            == "expected a positive integer, got \"2\"")
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(extra: ", limits: 5")]))
            == ConfigIssue(path: "listeners[0].limits", message: "expected a mapping of maxRequestHeaderBytes, maxRequestHeaders, maxConcurrentStreams, perConnectionBufferLimitBytes, requestHeadersTimeout, streamIdleTimeout, maxShareOfClusterRequests, got 5"))
        #expect(onlyIssue("listeners: { name: x }\nclusters: []")
            == ConfigIssue(path: "listeners", message: "expected a list of listeners, got a mapping"))
        #expect(onlyIssue(Fixture.listenerDocument(routes: ["x"]))
            == ConfigIssue(path: "listeners[0].routes[0]", message: "expected a mapping of match, cluster, split, timeout, requestHeadersToAdd, requestHeadersToRemove, fault, retries, got \"x\""))
    }

    @Test func enumValuesListTheChoices() {
        #expect(onlyIssue(Fixture.cluster("name: user, protocol: h2, endpoints: [127.0.0.1:1]")) == ConfigIssue(
            path: "clusters[0].protocol",
            message: "expected one of http1, http2, got \"h2\""
        ))
        #expect(onlyIssue(Fixture.cluster("name: user, loadBalancing: roundRobin, endpoints: [127.0.0.1:1]")) == ConfigIssue(
            path: "clusters[0].loadBalancing",
            message: "expected one of round_robin, least_request, random, ring_hash, got \"roundRobin\" (did you mean \"round_robin\"?)"
        ))
    }

    @Test func missingRequiredKeysNameTheKeyAndAnExample() {
        #expect(issues("clusters: []") == [ConfigIssue(path: "listeners", message: "missing; add at least one listener")])
        #expect(onlyIssue(Fixture.document(listeners: ["{ listen: 127.0.0.1:8080, routes: [{ cluster: user }] }"]))
            == ConfigIssue(path: "listeners[0].name", message: "missing; add e.g. \"name: ingress\""))
        #expect(onlyIssue(Fixture.document(top: "admin: {}\n"))
            == ConfigIssue(path: "admin.listen", message: "missing; add e.g. \"listen: 127.0.0.1:9901\""))
        // A cluster without a name defines no name, so the route to it is unknown too.
        #expect(issues(Fixture.cluster("endpoints: [127.0.0.1:1]")).map(\.path) == ["clusters[0].name", "listeners[0].routes[0].cluster"])
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { port: 80 }"))?.path == "clusters[0].dns.name")
        #expect(onlyIssue(Fixture.cluster("name: user, dns: { name: user.svc }"))?.path == "clusters[0].dns.port")
        #expect(issues("listeners: [\(Fixture.listener())]") == [
            ConfigIssue(path: "clusters", message: "missing; add the clusters that routes send requests to"),
            ConfigIssue(path: "listeners[0].routes[0].cluster", message: "unknown cluster \"user\" (no clusters are defined; add one under clusters)"),
        ])
    }

    @Test func emptyListsThatNeedAnElement() {
        #expect(issues("listeners: []\nclusters: []")
            == [ConfigIssue(path: "listeners", message: "the list is empty; add at least one listener")])
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(routes: [])]))
            == ConfigIssue(path: "listeners[0].routes", message: "the list is empty; add at least one route"))
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: []"))?.path == "clusters[0].endpoints")
    }

    @Test func emptyAndNonMappingDocuments() {
        #expect(issues("") == [ConfigIssue(path: "", message: "the document is empty; a config needs at least listeners and clusters")])
        #expect(issues("# only a comment\n").map(\.path) == [""])
        #expect(issues("- a\n- b").first?.message.hasPrefix("expected a mapping of admin, drainTimeout, accessLog, tracing, listeners, clusters, got a list") == true)
    }

    @Test func yamlSyntaxErrorIsOneIssueWithLineAndColumn() {
        let found = issues("listeners:\n  - name: ingress\n    listen: [127.0.0.1:8080\nclusters: []\n")
        #expect(found.count == 1)
        #expect(found.first?.path == "")
        #expect(found.first?.message.hasPrefix("invalid YAML at line 4, column 9:") == true)
        #expect(found.first?.description == found.first?.message)
    }

    @Test func duplicateYAMLKeyIsASyntaxIssue() {
        let found = issues("clusters: []\nlisteners: []\nclusters: []\n")
        #expect(found == [ConfigIssue(
            path: "",
            message: "invalid YAML at line 1, column 1: key \"clusters\" appears more than once in one mapping; keep one"
        )])
    }

    @Test func mergeKeysAreRefusedWithAReason() {
        let yaml = Fixture.cluster("<<: { protocol: http2 }, name: user, endpoints: [127.0.0.1:1]")
        #expect(onlyIssue(yaml) == ConfigIssue(path: "clusters[0]", message: "merge keys (<<) are not supported; write the keys out in full"))
    }

    @Test func everyIssueInTheDocumentIsReported() {
        let yaml = """
            drainTimeout: soon
            listeners:
              - name: ingress
                listen: 127.0.0.1:99999
                routes:
                  - { cluster: usr, timout: 1s }
              - name: ingress
                listen: 127.0.0.1:8081
                routes: [{ split: [{ cluster: user, weight: 0 }] }]
            clusters:
              - { name: user, endpoints: [backend:80] }
              - { name: user, protocol: http3, endpoints: [127.0.0.1:1] }
            """
        #expect(issues(yaml).map(\.path) == [
            "drainTimeout",
            "listeners[0].listen",
            "listeners[0].routes[0].timout",
            "listeners[1].routes[0].split[0].weight",
            "clusters[0].endpoints[0]",
            "clusters[1].protocol",
            "listeners[1].name",
            "clusters[1].name",
            "listeners[0].routes[0].cluster",
        ])
    }

    @Test func descriptionsArePathColonMessageOnePerLine() {
        let errors = ConfigErrors(issues: [
            ConfigIssue(path: "", message: "the document is empty"),
            ConfigIssue(path: "clusters[0].dns.port", message: "expected a port 1-65535, got 70000"),
        ])
        #expect(errors.description == "the document is empty\nclusters[0].dns.port: expected a port 1-65535, got 70000")
    }

    @Test func unreadableFileIsOneRootIssueNamingFileAndOSError() {
        let path = "/nonexistent/swiftmesh-\(#line).yaml"
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(path: path) }
        do {
            _ = try ConfigLoader.load(path: path)
        } catch {
            #expect(error.issues == [ConfigIssue(
                path: "",
                message: "cannot read config file \"\(path)\": No such file or directory"
            )])
        }
    }

    @Test func fileIssuesUseTheSamePathsAsText() throws {
        let path = try TemporaryFile.write(Fixture.cluster("name: user, endpoints: [127.0.0.1:0]"))
        defer { TemporaryFile.remove(path) }
        do {
            _ = try ConfigLoader.load(path: path)
            Issue.record("an invalid file decoded")
        } catch {
            #expect(error.issues.map(\.path) == ["clusters[0].endpoints[0]"])
        }
    }
}
