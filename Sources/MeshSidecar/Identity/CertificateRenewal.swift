import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import MeshAPI
import MeshConfig

/// Gets the sidecar's certificate from the control plane's certificate
/// authority (`Identity.IssueCertificate`), then a new one over a new key
/// two thirds into each one's lifetime. A request that fails is tried again
/// after a backoff; meanwhile the sidecar keeps the certificate it has. The
/// join token is sent, never logged.
struct CertificateRenewal: Sendable {
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let service: String
    let joinToken: String?
    let logger: Logger

    /// How long one request may take before it counts as failed.
    static let requestTimeout: Duration = .seconds(10)

    /// Asks until a certificate comes; nil when the task is cancelled first.
    /// `failed` hears why each try failed.
    func obtain(failed: @Sendable (String) async -> Void = { _ in }) async -> WorkloadCertificate? {
        var backoff = ReconnectBackoff()
        while !Task.isCancelled {
            do {
                return try await requestOnce()
            } catch {
                let reason = explain(error)
                logger.error("no certificate from the control plane; asking again", metadata: ["reason": "\(reason)"])
                await failed(reason)
            }
            try? await Task.sleep(for: backoff.next())
        }
        return nil
    }

    /// Renews `first` and each certificate after it at its `renewAt`, handing
    /// each to `adopt`, until the task is cancelled.
    func keepRenewed(_ first: WorkloadCertificate, adopt: @Sendable (WorkloadCertificate) async -> Void) async {
        var current = first
        while !Task.isCancelled {
            let wait = current.renewAt.timeIntervalSinceNow
            if wait > 0 {
                try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
            }
            guard !Task.isCancelled, let renewed = await obtain() else { return }
            await adopt(renewed)
            current = renewed
        }
    }

    private func requestOnce() async throws -> WorkloadCertificate {
        let key = try CertificateSigningKey(service: service)
        var options = CallOptions.defaults
        options.timeout = Self.requestTimeout
        options.waitForReady = false
        let response = try await Swiftmesh_V1_Identity.Client(wrapping: client).issueCertificate(
            .with {
                $0.service = service
                $0.csrPem = key.requestPEM
                $0.joinToken = joinToken ?? ""
            }, options: options)
        guard SPIFFEID.parse(response.identity)?.service == service else {
            throw UnexpectedCertificate(identity: response.identity)
        }
        let certificate = WorkloadCertificate(
            identity: response.identity, certificatePEM: response.certificatePem, privateKeyPEM: key.privateKeyPEM,
            trustBundlePEM: response.trustBundlePem,
            notAfter: Date(timeIntervalSince1970: Double(response.notAfterUnixMs) / 1000), received: Date())
        logger.info("certificate received", metadata: [
            "identity": "\(certificate.identity)", "notAfter": "\(certificate.notAfter)", "renewAt": "\(certificate.renewAt)",
        ])
        return certificate
    }

    private func explain(_ error: any Error) -> String {
        guard let rpcError = error as? RPCError else { return "\(error)" }
        if rpcError.code == .permissionDenied && joinToken == nil {
            return "\(rpcError.message) (this sidecar has no join token: pass --token or set SWIFTMESH_TOKEN)"
        }
        return "\(rpcError.code): \(rpcError.message)"
    }

    struct UnexpectedCertificate: Error, CustomStringConvertible {
        var identity: String
        var description: String {
            "the control plane issued a certificate for \"\(identity)\", not for this sidecar's service"
        }
    }
}
