import Crypto
import Foundation
import Testing
import X509

@testable import MeshControlPlane

/// A fresh data directory with a CA, the admin token (or none) and join tokens in it.
enum TestIdentity {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("swiftmesh-identity-\(UUID().uuidString)").path
    }

    static func make(adminToken: Bool, directory: String = directory()) throws -> MeshIdentity {
        MeshIdentity(
            authority: try CertificateAuthority.open(
                directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(3600)),
            adminToken: adminToken ? try AdminToken.open(directory: directory) : nil,
            joinTokens: JoinTokens(store: try SQLiteStore(directory: directory)))
    }
}

@Suite("Certificate authority")
struct CertificateAuthorityTests {
    private func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    private func csr(for key: P256.Signing.PrivateKey, commonName: String = "anything") throws -> String {
        try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) },
            privateKey: .init(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256
        ).serializeAsPEM().pemString
    }

    @Test func theRootIsMadeOnceAndItsKeyIsPrivate() throws {
        let directory = TestIdentity.directory()
        let first = try CertificateAuthority.open(directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(60))
        #expect(try mode(directory + "/ca/root-key.pem") == 0o600)
        #expect(try mode(directory + "/ca") == 0o700)
        let again = try CertificateAuthority.open(directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(60))
        #expect(first.root == again.root)
        #expect(try first.root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
    }

    @Test func aKeyFileOthersCanReadIsRefused() throws {
        let directory = TestIdentity.directory()
        _ = try CertificateAuthority.open(directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(60))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory + "/ca/root-key.pem")
        #expect(throws: CertificateAuthority.SetupError.self) {
            try CertificateAuthority.open(directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(60))
        }
    }

    @Test func issuesTheServiceIdentityWhateverTheRequestAsks() throws {
        let authority = try CertificateAuthority.open(
            directory: TestIdentity.directory(), trustDomain: "example.org", certificateLifetime: .seconds(3600))
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let leaf = try authority.issue(csrPEM: try csr(for: key, commonName: "admin"), service: "user", now: now)
        #expect(try leaf.extensions.subjectAlternativeNames == SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/service/user")]))
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(leaf.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(leaf.issuer == authority.root.subject)
        #expect(authority.root.publicKey.isValidSignature(leaf.signature, for: leaf))
        #expect(abs(leaf.notValidAfter.timeIntervalSince(now) - 3600) < 2)
        #expect(leaf.notValidBefore < now)
    }

    @Test func aCurrentCertificateRenewsOverItsOwnKeyOnly() throws {
        let directory = TestIdentity.directory()
        let authority = try CertificateAuthority.open(
            directory: directory, trustDomain: "swiftmesh.local", certificateLifetime: .seconds(3600))
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let current = try authority.issue(csrPEM: try csr(for: key), service: "user", now: now).serializeAsPEM().pemString
        #expect(authority.renewalRefusal(currentPEM: current, csrPEM: try csr(for: key), service: "user", now: now) == nil)
        #expect(authority.renewalRefusal(currentPEM: current, csrPEM: try csr(for: P256.Signing.PrivateKey()), service: "user", now: now)?
            .contains("over another key") == true)
        #expect(authority.renewalRefusal(currentPEM: current, csrPEM: try csr(for: key), service: "alive", now: now)?
            .contains("not one of service alive") == true)
        #expect(authority.renewalRefusal(currentPEM: current, csrPEM: try csr(for: key), service: "user", now: now + 7200)?
            .contains("expired") == true)
        let other = try CertificateAuthority.open(
            directory: TestIdentity.directory(), trustDomain: "swiftmesh.local", certificateLifetime: .seconds(3600))
        let foreign = try other.issue(csrPEM: try csr(for: key), service: "user", now: now).serializeAsPEM().pemString
        #expect(authority.renewalRefusal(currentPEM: foreign, csrPEM: try csr(for: key), service: "user", now: now)?
            .contains("not issued by this control plane") == true)
    }

    @Test func aRequestThatIsNotACSRIsRefused() throws {
        let authority = try CertificateAuthority.open(
            directory: TestIdentity.directory(), trustDomain: "swiftmesh.local", certificateLifetime: .seconds(3600))
        #expect(throws: CertificateAuthority.IssueError.self) {
            try authority.issue(csrPEM: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", service: "user")
        }
    }

    @Test func theAdminTokenIsMadeOnceWithMode0600() throws {
        let directory = TestIdentity.directory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let token = try AdminToken.open(directory: directory)
        #expect(token.value.hasPrefix("sma_"))
        #expect(try mode(directory + "/admin-token") == 0o600)
        #expect(try AdminToken.open(directory: directory).value == token.value)
        #expect(token.matches(token.value))
        #expect(!token.matches(token.value + "x"))
    }

    @Test func joinTokensExpire() async throws {
        let tokens = JoinTokens(store: try SQLiteStore(directory: TestIdentity.directory()))
        let now = Date()
        let created = try await tokens.create(service: "alive", lifetime: .seconds(60), now: now)
        #expect(try await tokens.service(grantedBy: created.token, now: now) == "alive")
        #expect(try await tokens.service(grantedBy: created.token, now: now + 61) == nil)
    }
}
