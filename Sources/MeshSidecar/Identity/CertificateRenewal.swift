import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import MeshAPI
import MeshConfig

/// Gets the sidecar's certificate from the control plane's certificate
/// authority (`Identity.IssueCertificate`) with the join token, then a new
/// one two thirds into each one's lifetime, over the same key and proven by
/// the current certificate (the join token may have expired by then; it is
/// used again only if the current certificate no longer counts). A request
/// that fails is tried again after a backoff; meanwhile the sidecar keeps the
/// certificate it has. The join token is sent, never logged.
struct CertificateRenewal: Sendable {
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let service: String
    let joinToken: JoinToken?
    let logger: Logger

    /// How long one request may take before it counts as failed.
    static let requestTimeout: Duration = .seconds(10)
    /// A certificate valid for less than this when it arrives is refused: its
    /// renewal would come at once, again and again (a wrong clock, or a root
    /// about to expire).
    static let shortestLifetime: TimeInterval = 10

    /// Asks until a certificate comes, renewing `current` when given; nil
    /// when the task is cancelled first. `failed` hears why each try failed.
    func obtain(
        renewing current: WorkloadCertificate? = nil, failed: @Sendable (String) async -> Void = { _ in }
    ) async -> WorkloadCertificate? {
        var backoff = ReconnectBackoff()
        var renewing = current
        while !Task.isCancelled {
            do {
                return try await requestOnce(renewing: renewing.flatMap { $0.notAfter > Date() ? $0 : nil })
            } catch {
                let reason = explain(error, renewing: renewing != nil)
                logger.error("no certificate from the control plane; asking again", metadata: ["reason": "\(reason)"])
                await failed(reason)
                if (error as? RPCError)?.code == .permissionDenied && renewing != nil {
                    // The current certificate no longer counts: start over with the join token.
                    renewing = nil
                }
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
            guard !Task.isCancelled, let renewed = await obtain(renewing: current) else { return }
            await adopt(renewed)
            current = renewed
        }
    }

    private func requestOnce(renewing current: WorkloadCertificate?) async throws -> WorkloadCertificate {
        let key = try CertificateSigningKey(service: service, existingPEM: current?.privateKeyPEM)
        var options = CallOptions.defaults
        options.timeout = Self.requestTimeout
        options.waitForReady = false
        let response = try await Swiftmesh_V1_Identity.Client(wrapping: client).issueCertificate(
            .with {
                $0.service = service
                $0.csrPem = key.requestPEM
                if let current {
                    $0.currentCertificatePem = current.certificatePEM
                } else {
                    $0.joinToken = joinToken?.value ?? ""
                }
            }, options: options)
        guard SPIFFEID.parse(response.identity)?.service == service else {
            throw UnexpectedCertificate(identity: response.identity)
        }
        let certificate = WorkloadCertificate(
            identity: response.identity, certificatePEM: response.certificatePem, privateKeyPEM: key.privateKeyPEM,
            trustBundlePEM: response.trustBundlePem,
            notAfter: Date(timeIntervalSince1970: Double(response.notAfterUnixMs) / 1000), received: Date())
        let lifetime = certificate.notAfter.timeIntervalSince(certificate.received)
        guard lifetime >= Self.shortestLifetime else {
            throw ShortLived(seconds: lifetime)
        }
        logger.info("certificate received", metadata: [
            "identity": "\(certificate.identity)", "notAfter": "\(certificate.notAfter)", "renewAt": "\(certificate.renewAt)",
        ])
        return certificate
    }

    private func explain(_ error: any Error, renewing: Bool) -> String {
        guard let rpcError = error as? RPCError else { return "\(error)" }
        if rpcError.code == .permissionDenied && joinToken == nil && !renewing {
            return "\(rpcError.message) (this sidecar has no join token: pass --token or set SWIFTMESH_TOKEN)"
        }
        return "\(rpcError.code): \(rpcError.message)"
    }

    struct ShortLived: Error, CustomStringConvertible {
        var seconds: TimeInterval
        var description: String {
            "the certificate issued is valid for \(Int(seconds))s from now, under \(Int(CertificateRenewal.shortestLifetime))s: "
                + "check the clocks of this host and the control plane, and the expiry of the mesh's root"
        }
    }

    struct UnexpectedCertificate: Error, CustomStringConvertible {
        var identity: String
        var description: String {
            "the control plane issued a certificate for \"\(identity)\", not for this sidecar's service"
        }
    }
}
