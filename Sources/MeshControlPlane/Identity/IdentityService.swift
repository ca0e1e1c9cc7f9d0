import Foundation
import GRPCCore
import Logging
import MeshAPI
import MeshConfig
import X509

/// The gRPC side of the certificate authority: sidecars send a CSR and their
/// join token (to renew: their current certificate instead), and get their
/// service's certificate. Every issue and every refusal is logged, never the token.
struct IdentityService: Swiftmesh_V1_Identity.SimpleServiceProtocol {
    let identity: MeshIdentity
    let logger: Logger

    func issueCertificate(
        request: Swiftmesh_V1_IssueCertificateRequest, context: ServerContext
    ) async throws -> Swiftmesh_V1_IssueCertificateResponse {
        let service = request.service
        if let problem = ServiceNameSyntax.problem(service) {
            throw RPCError(code: .invalidArgument, message: "service: \(problem)")
        }
        if !request.currentCertificatePem.isEmpty {
            if let refusal = identity.authority.renewalRefusal(
                currentPEM: request.currentCertificatePem, csrPEM: request.csrPem, service: service) {
                logger.warning("renewal refused", metadata: ["service": "\(service)", "reason": "\(refusal)"])
                throw RPCError(code: .permissionDenied, message: refusal)
            }
        } else if !identity.isDevelopment {
            let granted: String?
            do {
                granted = try await identity.joinTokens.service(grantedBy: request.joinToken)
            } catch {
                throw RPCError(code: .unavailable, message: "the join tokens cannot be read: \(error)")
            }
            guard let granted else {
                logger.warning("certificate refused: unknown or expired join token", metadata: ["service": "\(service)"])
                throw RPCError(
                    code: .permissionDenied,
                    message: "the join token is unknown or has expired; make one with swiftmesh token create --service \(service)")
            }
            guard granted == service else {
                logger.warning("certificate refused: join token for another service", metadata: [
                    "service": "\(service)", "tokenService": "\(granted)",
                ])
                throw RPCError(
                    code: .permissionDenied, message: "the join token is for service \(granted), not \(service)")
            }
        }
        let certificate: Certificate
        do {
            certificate = try identity.authority.issue(csrPEM: request.csrPem, service: service)
        } catch let error as CertificateAuthority.IssueError {
            throw RPCError(code: .invalidArgument, message: "csr_pem: \(error)")
        }
        let spiffeID = identity.authority.identity(of: service)
        logger.info("certificate issued", metadata: [
            "identity": "\(spiffeID)", "serial": "\(certificate.serialNumber)",
            "notAfter": "\(ISO8601DateFormatter().string(from: certificate.notValidAfter))",
        ])
        return try .with {
            $0.certificatePem = try certificate.serializeAsPEM().pemString
            $0.trustBundlePem = identity.authority.rootPEM
            $0.identity = spiffeID
            $0.notAfterUnixMs = Int64(certificate.notValidAfter.timeIntervalSince1970 * 1000)
        }
    }
}
