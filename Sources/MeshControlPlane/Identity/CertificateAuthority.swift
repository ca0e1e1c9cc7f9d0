import Crypto
import Foundation
import MeshConfig
import X509

/// The mesh's certificate authority. Its root (ECDSA P-256) signs every
/// sidecar's short-lived certificate, whose URI name is the SPIFFE ID
/// `spiffe://<trust-domain>/service/<name>`; sidecars trust each other's
/// certificates because they chain to this root. The root's private key
/// never leaves the control plane: it is neither served nor logged.
public final class CertificateAuthority: Sendable {
    public let trustDomain: String
    public let root: Certificate
    /// The root certificate as PEM: what every sidecar trusts (`GET /api/v1/ca`).
    public let rootPEM: String
    /// How long the certificates it issues are valid.
    public let certificateLifetime: Duration
    private let rootKey: Certificate.PrivateKey

    public static let defaultTrustDomain = "swiftmesh.local"
    public static let defaultCertificateLifetime = Duration.seconds(24 * 3600)
    static let rootLifetime: TimeInterval = 10 * 365 * 24 * 3600

    /// Where a root given on the command line lives (`--ca-cert`, `--ca-key`).
    public struct GivenRoot: Sendable {
        public var certificatePath: String
        public var keyPath: String

        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The root given as files, or the one kept in `directory/ca` (created
    /// on first start: `root.pem`, and `root-key.pem` with mode 0600).
    public static func open(
        directory: String, trustDomain: String, certificateLifetime: Duration, given: GivenRoot? = nil
    ) throws -> CertificateAuthority {
        if let problem = TrustDomainSyntax.problem(trustDomain) {
            throw SetupError(description: "--trust-domain: \(problem)")
        }
        let certificatePath: String
        let keyPath: String
        if let given {
            certificatePath = given.certificatePath
            keyPath = given.keyPath
        } else {
            let caDirectory = (directory as NSString).appendingPathComponent("ca")
            certificatePath = (caDirectory as NSString).appendingPathComponent("root.pem")
            keyPath = (caDirectory as NSString).appendingPathComponent("root-key.pem")
            if !FileManager.default.fileExists(atPath: keyPath) {
                try FileManager.default.createDirectory(
                    atPath: caDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try createRoot(trustDomain: trustDomain, certificatePath: certificatePath, keyPath: keyPath)
            }
        }
        let keyPEM: String
        do {
            guard let text = try SecretFile.read(keyPath) else {
                throw SetupError(description: "the CA key \(keyPath) does not exist")
            }
            keyPEM = text
        } catch let problem as SecretFile.Problem {
            throw SetupError(description: "the CA key: \(problem)")
        }
        guard let certificateData = FileManager.default.contents(atPath: certificatePath) else {
            throw SetupError(description: "the CA certificate \(certificatePath) cannot be read")
        }
        return try load(
            certificatePEM: String(decoding: certificateData, as: UTF8.self), keyPEM: keyPEM,
            certificateSource: certificatePath, keySource: keyPath,
            trustDomain: trustDomain, certificateLifetime: certificateLifetime)
    }

    /// The root in `certificatePEM` with its key in `keyPEM`; the sources
    /// name where they came from in errors.
    public static func load(
        certificatePEM: String, keyPEM: String, certificateSource: String, keySource: String,
        trustDomain: String, certificateLifetime: Duration
    ) throws -> CertificateAuthority {
        if let problem = TrustDomainSyntax.problem(trustDomain) {
            throw SetupError(description: "--trust-domain: \(problem)")
        }
        guard let key = try? P256.Signing.PrivateKey(pemRepresentation: keyPEM) else {
            throw SetupError(description: "the CA key \(keySource) is not an ECDSA P-256 private key in PEM")
        }
        guard let root = try? Certificate(pemEncoded: certificatePEM) else {
            throw SetupError(description: "the CA certificate \(certificateSource) is not a PEM certificate")
        }
        guard root.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw SetupError(description: "the CA key \(keySource) does not belong to the certificate \(certificateSource)")
        }
        guard isAuthority(root) else {
            throw SetupError(description: "the CA certificate \(certificateSource) is not a certificate authority (basicConstraints)")
        }
        return CertificateAuthority(
            trustDomain: trustDomain, root: root, rootPEM: try root.serializeAsPEM().pemString,
            certificateLifetime: certificateLifetime, rootKey: Certificate.PrivateKey(key))
    }

    private init(
        trustDomain: String, root: Certificate, rootPEM: String, certificateLifetime: Duration, rootKey: Certificate.PrivateKey
    ) {
        self.trustDomain = trustDomain
        self.root = root
        self.rootPEM = rootPEM
        self.certificateLifetime = certificateLifetime
        self.rootKey = rootKey
    }

    private static func isAuthority(_ certificate: Certificate) -> Bool {
        if case .isCertificateAuthority? = try? certificate.extensions.basicConstraints { return true }
        return false
    }

    private static func createRoot(trustDomain: String, certificatePath: String, keyPath: String) throws {
        let root = try makeRoot(trustDomain: trustDomain)
        // The key first: a certificate without its key is useless, a key
        // without its certificate is made again on the next start.
        try SecretFile.create(keyPath, content: root.keyPEM)
        try SecretFile.create(certificatePath, content: root.certificatePEM)
    }

    /// A new root for `trustDomain`, valid for ten years: its certificate and its key, PEM.
    public static func makeRoot(trustDomain: String) throws -> (certificatePEM: String, keyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName("SwiftMesh root CA")
        }
        let now = Date()
        let root = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + rootLifetime,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain)")])
            },
            issuerPrivateKey: .init(key))
        return (try root.serializeAsPEM().pemString, key.pemRepresentation)
    }

    /// The SPIFFE ID of a service's certificates.
    public func identity(of service: String) -> String {
        SPIFFEID.service(service, trustDomain: trustDomain)
    }

    public enum IssueError: Error, CustomStringConvertible {
        case unreadableRequest
        case badSignature

        public var description: String {
            switch self {
            case .unreadableRequest: "the certificate signing request is not a PEM CSR"
            case .badSignature: "the certificate signing request's signature does not verify with its own key"
            }
        }
    }

    /// Why `currentPEM` does not let its holder renew `service`'s certificate
    /// over the key of `csrPEM`, or nil when it does: a certificate this root
    /// signed for the service's identity, still valid at `now`, over the same
    /// key as the request (whose signature, checked when issuing, proves the
    /// requester holds that key). This is how sidecars renew without their
    /// join token, which may have expired since they started.
    public func renewalRefusal(currentPEM: String, csrPEM: String, service: String, now: Date = Date()) -> String? {
        guard let current = try? Certificate(pemEncoded: currentPEM) else {
            return "current_certificate_pem is not a PEM certificate"
        }
        guard current.issuer == root.subject, root.publicKey.isValidSignature(current.signature, for: current) else {
            return "the current certificate was not issued by this control plane's root"
        }
        guard current.notValidBefore <= now, now < current.notValidAfter else {
            return "the current certificate has expired; restart the sidecar with a join token"
        }
        let names = (try? current.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames()
        guard names.contains(.uniformResourceIdentifier(identity(of: service))) else {
            return "the current certificate is not one of service \(service)"
        }
        guard let request = try? CertificateSigningRequest(pemEncoded: csrPEM), request.publicKey == current.publicKey else {
            return "a renewal keeps the key of the current certificate; the request is over another key"
        }
        return nil
    }

    /// The certificate the sidecar API serves, with its key (PEM), made at
    /// each start and kept in memory only: its names are
    /// `SPIFFEID.controlPlaneServerName` and the control plane's SPIFFE ID,
    /// and it is valid for a year, or until the root ends.
    public func servingCertificate(now: Date = Date()) throws -> (certificatePEM: String, privateKeyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let certificate = try signLeaf(
            publicKey: Certificate.PublicKey(key.publicKey), commonName: "control plane", lifetime: 365 * 24 * 3600,
            usages: [.serverAuth],
            names: [
                .dnsName(SPIFFEID.controlPlaneServerName),
                .uniformResourceIdentifier(SPIFFEID.controlPlane(trustDomain: trustDomain)),
            ],
            now: now)
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    /// The certificate of the sidecar-injection webhook's HTTPS listener,
    /// with its key (PEM), made at each start and kept in memory only: its
    /// names are `dnsNames`, those the Kubernetes API server calls it by
    /// (`<service>.<namespace>.svc`), and the API server trusts it through
    /// the webhook configuration's caBundle, this root.
    public func webhookCertificate(dnsNames: [String], now: Date = Date()) throws -> (certificatePEM: String, privateKeyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let certificate = try signLeaf(
            publicKey: Certificate.PublicKey(key.publicKey), commonName: "sidecar injection", lifetime: 365 * 24 * 3600,
            usages: [.serverAuth], names: dnsNames.map { .dnsName($0) }, now: now)
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    /// A certificate for `service` over the key of `csrPEM`, valid from a
    /// minute ago (clocks differ a little) for `certificateLifetime`, but
    /// never past the root's own end. Only the key is taken from the
    /// request: the name is the service's SPIFFE ID, whatever the request asks.
    public func issue(csrPEM: String, service: String, now: Date = Date()) throws -> Certificate {
        guard let request = try? CertificateSigningRequest(pemEncoded: csrPEM) else {
            throw IssueError.unreadableRequest
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw IssueError.badSignature
        }
        return try signLeaf(
            publicKey: request.publicKey, commonName: service, lifetime: TimeInterval(certificateLifetime.components.seconds),
            usages: [.serverAuth, .clientAuth], names: [.uniformResourceIdentifier(identity(of: service))], now: now)
    }

    /// A leaf the root signs: valid from a minute ago (clocks differ a
    /// little) for `lifetime`, never past the root's own end, named by
    /// `names` (a critical extension: the names are what the leaf is for).
    private func signLeaf(
        publicKey: Certificate.PublicKey, commonName: String, lifetime: TimeInterval,
        usages: [ExtendedKeyUsage.Usage], names: [GeneralName], now: Date
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now - 60, notValidAfter: min(now + lifetime, root.notValidAfter),
            issuer: root.subject,
            subject: try DistinguishedName {
                OrganizationName(trustDomain)
                CommonName(commonName)
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usages)
                Critical(SubjectAlternativeNames(names))
            },
            issuerPrivateKey: rootKey)
    }
}
