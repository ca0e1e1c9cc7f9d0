import Crypto
import X509

/// An ECDSA P-256 key and the certificate signing request over it that the
/// control plane's certificate authority signs: a new key for the first
/// certificate, the same key for renewals (the request's signature proves the
/// sidecar still holds the key of its current certificate).
struct CertificateSigningKey {
    let privateKeyPEM: String
    let requestPEM: String

    /// A new key, or the key of `existingPEM`.
    init(service: String, existingPEM: String? = nil) throws {
        let key = try existingPEM.map { try P256.Signing.PrivateKey(pemRepresentation: $0) } ?? P256.Signing.PrivateKey()
        // The authority names the certificate after the service's SPIFFE ID
        // whatever the request says; the subject only makes the request readable.
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(service) },
            privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        privateKeyPEM = key.pemRepresentation
        requestPEM = try request.serializeAsPEM().pemString
    }
}
