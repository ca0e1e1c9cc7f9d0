import Testing
@testable import MeshConfig

@Suite("Path normalization and DNS address families")
struct PathNormalizationConfigTests {
    /// On by default; encoded slashes are refused where authorization decides, kept elsewhere.
    @Test func pathNormalizationIsOnByDefault() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document())
        #expect(config.listeners[0].pathNormalization == PathNormalizationConfig(
            enabled: true, mergeSlashes: true, escapedSlashes: .keep))
        let authorized = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(
            extra: ", authorization: { default: allow }")]))
        #expect(authorized.listeners[0].pathNormalization.escapedSlashes == .reject)
        let partly = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(
            extra: ", authorization: { default: allow }, pathNormalization: { mergeSlashes: false }")]))
        #expect(partly.listeners[0].pathNormalization == PathNormalizationConfig(
            enabled: true, mergeSlashes: false, escapedSlashes: .reject))
    }

    @Test func everyKeyIsRead() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(
            extra: ", pathNormalization: { enabled: false, mergeSlashes: false, escapedSlashes: unescape }")]))
        #expect(config.listeners[0].pathNormalization == PathNormalizationConfig(
            enabled: false, mergeSlashes: false, escapedSlashes: .unescape))
    }

    @Test func mistakesNameTheirPath() {
        let issue = onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", pathNormalization: { escapedSlashes: unescaped }")]))
        #expect(issue?.path == "listeners[0].pathNormalization.escapedSlashes")
        #expect(issue?.message.contains("did you mean \"unescape\"") == true)
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", pathNormalization: { enabled: yes please }")]))?.path == "listeners[0].pathNormalization.enabled")
    }

    @Test func dnsFamilyDefaultsToAuto() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster("name: user, dns: { name: user.test, port: 80 }"))
        guard case .dns(let dns) = config.clusters[0].discovery else {
            Issue.record("not dns discovery")
            return
        }
        #expect(dns.family == .auto)
        let v6 = try ConfigLoader.decode(yaml: Fixture.cluster("name: user, dns: { name: user.test, port: 80, family: v6 }"))
        guard case .dns(let only6) = v6.clusters[0].discovery else { return }
        #expect(only6.family == .v6)
    }

    @Test func aWrongFamilyNamesItsPath() {
        let issue = onlyIssue(Fixture.cluster("name: user, dns: { name: user.test, port: 80, family: ipv4 }"))
        #expect(issue?.path == "clusters[0].dns.family")
    }
}
