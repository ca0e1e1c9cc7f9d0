import Testing
@testable import MeshConfig

@Suite("TLS settings")
struct TLSConfigTests {
    @Test func listenerTLSWithDefaults() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(
            listeners: [Fixture.listener(extra: ", tls: { certificate: /etc/tls.crt, privateKey: /etc/tls.key }")]))
        let tls = try #require(config.listeners[0].tls)
        #expect(tls.certificate == .file("/etc/tls.crt"))
        #expect(tls.privateKey == .file("/etc/tls.key"))
        #expect(tls.clientCertificate == ClientCertificateMode.none)
        #expect(tls.caCertificates == nil)
        #expect(tls.mode == .strict)
        #expect(try ConfigLoader.decode(yaml: Fixture.document()).listeners[0].tls == nil)
    }

    @Test func listenerTLSEveryKey() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(extra: """
            , tls: { certificate: c.pem, privateKey: k.pem, clientCertificate: optional, caCertificates: ca.pem, mode: permissive }
            """)]))
        let tls = try #require(config.listeners[0].tls)
        #expect(tls.clientCertificate == .optional)
        #expect(tls.caCertificates == .file("ca.pem"))
        #expect(tls.mode == .permissive)
    }

    @Test func minimumVersionIsQuotedOrNot() throws {
        let quoted = try ConfigLoader.decode(yaml: Fixture.document(listeners: [Fixture.listener(
            extra: ", tls: { certificate: c.pem, privateKey: k.pem, minimumVersion: \"1.3\" }")]))
        #expect(quoted.listeners[0].tls?.minimumVersion == .tls13)
        let bare = try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { minimumVersion: 1.3 }"))
        #expect(bare.clusters[0].tls?.minimumVersion == .tls13)
        let old = onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { minimumVersion: 1.1 }"))
        #expect(old?.path == "clusters[0].tls.minimumVersion")
        #expect(old?.message.contains("expected one of 1.2, 1.3") == true)
        #expect(try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: {}"))
            .clusters[0].tls?.minimumVersion == .tls12)
    }

    @Test func clientCertificatesNeedAuthorities() {
        let issue = onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", tls: { certificate: c.pem, privateKey: k.pem, clientCertificate: optional }")]))
        #expect(issue?.path == "listeners[0].tls.caCertificates")
        #expect(issue?.message.contains("required when clientCertificate is optional") == true)
    }

    /// Plaintext clients present no certificate, so permissive mode cannot require one.
    @Test func requiredClientCertificatesNeedStrictMode() {
        let issue = onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", tls: { certificate: c.pem, privateKey: k.pem, clientCertificate: required, caCertificates: ca.pem, mode: permissive }")]))
        #expect(issue?.path == "listeners[0].tls.clientCertificate")
    }

    @Test func listenerTLSMistakesNameTheField() {
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(extra: ", tls: { certificate: c.pem }")]))?.path
            == "listeners[0].tls.privateKey")
        let mode = onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", tls: { certificate: c.pem, privateKey: k.pem, mode: strikt }")]))
        #expect(mode?.path == "listeners[0].tls.mode")
        #expect(mode?.message.contains("did you mean \"strict\"") == true)
        #expect(onlyIssue(Fixture.document(listeners: [Fixture.listener(
            extra: ", tls: { certificate: c.pem, privateKey: k.pem, ciphers: all }")]))?.path
            == "listeners[0].tls.ciphers")
    }

    @Test func clusterTLS() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.cluster(
            "name: user, endpoints: [127.0.0.1:9000], tls: { sni: user.internal, caCertificates: ca.pem, certificate: c.pem, privateKey: k.pem }"))
        let tls = try #require(config.clusters[0].tls)
        #expect(tls.sni == "user.internal")
        #expect(tls.caCertificates == .file("ca.pem"))
        #expect(tls.certificate == .file("c.pem"))
        #expect(tls.privateKey == .file("k.pem"))
        #expect(tls.identities == [])
        let checked = try ConfigLoader.decode(yaml: Fixture.cluster(
            "name: user, endpoints: [127.0.0.1:9000], tls: { identities: [spiffe://swiftmesh.local/service/user] }"))
        #expect(checked.clusters[0].tls?.identities == ["spiffe://swiftmesh.local/service/user"])
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { identities: [] }"))?.path
            == "clusters[0].tls.identities")
        let bare = try ConfigLoader.decode(yaml: Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: {}"))
        #expect(bare.clusters[0].tls == ClusterTLSConfig())
    }

    @Test func clusterTLSMistakesNameTheField() {
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { sni: 10.0.0.1 }"))?.path
            == "clusters[0].tls.sni")
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { certificate: c.pem }"))?.path
            == "clusters[0].tls.privateKey")
        #expect(onlyIssue(Fixture.cluster("name: user, endpoints: [127.0.0.1:9000], tls: { privateKey: k.pem }"))?.path
            == "clusters[0].tls.certificate")
    }

    @Test func effectiveConfigShowsPathsNeverPEM() throws {
        var config = try ConfigLoader.decode(yaml: Fixture.document(
            listeners: [Fixture.listener(extra: ", tls: { certificate: /etc/tls.crt, privateKey: /etc/tls.key }")]))
        config.clusters[0].tls = ClusterTLSConfig(
            certificate: .inMemory("-----BEGIN CERTIFICATE-----"), privateKey: .inMemory("-----BEGIN PRIVATE KEY-----"))
        let json = ConfigJSON.render(config)
        #expect(json.contains("\"privateKey\" : \"/etc/tls.key\""))
        #expect(json.contains("(in memory)"))
        #expect(!json.contains("BEGIN"))
    }
}
