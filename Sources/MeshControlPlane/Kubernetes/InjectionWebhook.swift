import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import MeshConfig
import NIOSSL

/// The HTTPS listener the Kubernetes API server calls with every pod to be
/// created (`POST /inject`, an AdmissionReview v1), answered by
/// `SidecarInjector`. Its certificate comes from the mesh's root, so the
/// webhook configuration's caBundle is that root (`swiftmesh get ca`).
public struct InjectionWebhook: Sendable {
    public let injector: SidecarInjector
    public let certificate: (certificatePEM: String, privateKeyPEM: String)

    /// An AdmissionReview carries one pod; the API server's own limit on a request is 3 MiB.
    static let maxBodyBytes = 4 * 1024 * 1024

    public init(injector: SidecarInjector, authority: CertificateAuthority, dnsNames: [String]) throws {
        self.injector = injector
        certificate = try authority.webhookCertificate(dnsNames: dnsNames)
    }

    /// Serves until cancelled; throws when the address cannot be bound.
    public func run(address: HostPort, logger: Logger) async throws {
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)))
        let app = Application(
            router: router(logger: logger),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "swiftmesh"),
            onServerRunning: { channel in
                logger.info("sidecar injection webhook listening", metadata: [
                    "address": "\(ListeningAddress.text(channel.localAddress))",
                ])
            },
            logger: logger)
        try await app.runUntilCancelled(logger: logger)
    }

    func router(logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("inject") { request, _ -> Response in
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            do {
                let answer = try injector.review(Data(body.readableBytesView))
                return Response(
                    status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: answer)))
            } catch {
                logger.warning("refused a malformed AdmissionReview", metadata: ["reason": "\(error)"])
                return JSONResponse.error(.badRequest, "not an AdmissionReview v1 request: \(error)")
            }
        }
        return router
    }
}
