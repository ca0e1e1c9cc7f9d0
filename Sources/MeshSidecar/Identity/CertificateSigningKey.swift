import Crypto
import X509

/// A fresh ECDSA P-256 key and the certificate signing request over it that
/// the control plane's certificate authority signs. Each certificate gets a
/// new key, so a renewal also rotates the key.
struct CertificateSigningKey {
    let privateKeyPEM: String
    let requestPEM: String

    init(service: String) throws {
        let key = P256.Signing.PrivateKey()
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
