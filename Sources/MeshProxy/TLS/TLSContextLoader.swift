import MeshConfig
import NIOSSL

/// Builds the TLS contexts a config asks for, reading its PEM files. Each
/// failure names the config field it comes from, as config errors do.
enum TLSContextLoader {
    /// The context of a listener that terminates TLS: its certificate, HTTP/2
    /// and HTTP/1.1 offered by ALPN, and client certificates verified against
    /// `caCertificates` when asked for.
    static func serverContext(_ tls: ListenerTLSConfig, path: String) throws -> NIOSSLContext {
        var reader = PEMReader()
        let chain = try certificates(tls.certificate, path: "\(path).certificate", reader: &reader)
        let key = try privateKey(tls.privateKey, path: "\(path).privateKey", reader: &reader)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = version(tls.minimumVersion)
        if let authorities = tls.caCertificates {
            configuration.trustRoots = .certificates(
                try certificates(authorities, path: "\(path).caCertificates", reader: &reader))
        }
        switch tls.clientCertificate {
        case .none: configuration.certificateVerification = .none
        case .optional: configuration.certificateVerification = .optionalVerification
        case .required: configuration.certificateVerification = .noHostnameVerification
        }
        return try context(configuration, path: path)
    }

    /// The context for connections to a cluster's endpoints: the cluster's
    /// protocol offered by ALPN, endpoint certificates verified against
    /// `caCertificates` (or the system's store) and, with `sni`, against that
    /// name; a client certificate when one is configured. The fingerprint
    /// identifies what the context was built from (see `PEMReader`).
    static func clientContext(
        _ tls: ClusterTLSConfig, protocol kind: UpstreamProtocol, path: String
    ) throws -> (context: NIOSSLContext, fingerprint: Int) {
        var reader = PEMReader()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = [kind == .http2 ? "h2" : "http/1.1"]
        configuration.minimumTLSVersion = version(tls.minimumVersion)
        configuration.certificateVerification = tls.sni == nil ? .noHostnameVerification : .fullVerification
        if let authorities = tls.caCertificates {
            configuration.trustRoots = .certificates(
                try certificates(authorities, path: "\(path).caCertificates", reader: &reader))
        }
        if let certificate = tls.certificate, let key = tls.privateKey {
            configuration.certificateChain = try certificates(certificate, path: "\(path).certificate", reader: &reader)
                .map { .certificate($0) }
            configuration.privateKey = .privateKey(try privateKey(key, path: "\(path).privateKey", reader: &reader))
        }
        return (try context(configuration, path: path), reader.fingerprint)
    }

    /// NIOSSL's default would allow TLS 1.0; HTTP/2 requires 1.2 or later (RFC 9113 section 9.2).
    private static func version(_ minimum: TLSMinimumVersion) -> TLSVersion {
        switch minimum {
        case .tls12: .tlsv12
        case .tls13: .tlsv13
        }
    }

    private static func certificates(
        _ source: PEMSource, path: String, reader: inout PEMReader
    ) throws -> [NIOSSLCertificate] {
        let pem = try reader.text(of: source, path: path)
        let found: [NIOSSLCertificate]
        do {
            found = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        } catch {
            throw TLSSetupError(path: path, message: "\(describe(source)) holds no readable PEM certificate (\(error))")
        }
        guard !found.isEmpty else {
            throw TLSSetupError(path: path, message: "\(describe(source)) holds no PEM certificate")
        }
        return found
    }

    private static func privateKey(_ source: PEMSource, path: String, reader: inout PEMReader) throws -> NIOSSLPrivateKey {
        let pem = try reader.text(of: source, path: path)
        do {
            return try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem)
        } catch {
            // Nothing of the key goes into the message.
            throw TLSSetupError(path: path, message: "\(describe(source)) holds no readable PEM private key")
        }
    }

    private static func context(_ configuration: TLSConfiguration, path: String) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError(path: path, message: "the certificate and key do not make a TLS context (\(error)); check that the key belongs to the first certificate")
        }
    }

    private static func describe(_ source: PEMSource) -> String {
        switch source {
        case .file(let file): "the file \(file)"
        case .inMemory: "the in-memory PEM"
        }
    }
}

/// Reads the PEM of one context, each source once, and remembers a
/// fingerprint of everything read rather than the text: a reload compares
/// fingerprints to keep a context whose files did not change, and no copy of
/// a private key outlives the context built from it.
struct PEMReader {
    private var hasher = Hasher()

    mutating func text(of source: PEMSource, path: String) throws -> String {
        let text = try PEMFile.text(of: source, path: path)
        hasher.combine(text)
        return text
    }

    /// Stable within the process, which is as long as contexts live.
    var fingerprint: Int { hasher.finalize() }
}

/// A TLS setting that could not be loaded, at its config field path.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String

    public var description: String { "\(path): \(message)" }
}
