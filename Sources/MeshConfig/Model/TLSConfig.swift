/// PEM text the proxy loads: a file named in the config, or PEM held in
/// memory. Only code builds the in-memory kind: a sidecar's own certificate
/// and private key, which never touch the disk.
public enum PEMSource: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    case file(String)
    case inMemory(String)

    /// The path, or only that PEM is held in memory: printing a config never shows a key.
    public var description: String {
        switch self {
        case .file(let path): path
        case .inMemory: "(in memory)"
        }
    }

    public var debugDescription: String { description }

    var isInMemory: Bool {
        if case .inMemory = self { true } else { false }
    }
}

/// TLS on a listener (`listeners[].tls`): the proxy terminates it, offering
/// HTTP/2 and HTTP/1.1 by ALPN.
public struct ListenerTLSConfig: Sendable, Equatable {
    /// The certificate chain the listener presents, leaf first.
    public var certificate: PEMSource
    /// The private key of the leaf certificate.
    public var privateKey: PEMSource
    /// Whether clients must present a certificate. Default none.
    public var clientCertificate: ClientCertificateMode
    /// The authorities client certificates must chain to; required unless
    /// `clientCertificate` is none.
    public var caCertificates: PEMSource?
    /// strict (the default): TLS only. permissive: TLS and plaintext on the
    /// same port, told apart by the first byte, for migrations.
    public var mode: ListenerTLSMode
    /// The oldest TLS version accepted. Default 1.2.
    public var minimumVersion: TLSMinimumVersion

    public init(
        certificate: PEMSource, privateKey: PEMSource, clientCertificate: ClientCertificateMode = .none,
        caCertificates: PEMSource? = nil, mode: ListenerTLSMode = .strict, minimumVersion: TLSMinimumVersion = .tls12
    ) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.clientCertificate = clientCertificate
        self.caCertificates = caCertificates
        self.mode = mode
        self.minimumVersion = minimumVersion
    }
}

extension ListenerTLSConfig {
    /// Every PEM it names is held in memory (a sidecar's own), so equal
    /// settings mean equal contexts: a reload need not build them again.
    public var isInMemory: Bool {
        certificate.isInMemory && privateKey.isInMemory && (caCertificates?.isInMemory ?? true)
    }
}

extension ClusterTLSConfig {
    /// Every PEM it names is held in memory, and it names its authorities
    /// (without them the system's trust store, files, is read).
    public var isInMemory: Bool {
        [caCertificates, certificate, privateKey].allSatisfy { $0?.isInMemory ?? true } && caCertificates != nil
    }
}

/// Config spelling: `none`, `optional`, `required`.
public enum ClientCertificateMode: String, Sendable, Equatable, CaseIterable {
    /// Not asked for.
    case none
    /// Verified when presented; a client without one is still served.
    case optional
    /// Asked for and verified; a client without a valid one fails the handshake.
    case required
}

/// Config spelling: `"1.2"`, `"1.3"`. HTTP/2 needs 1.2 or later (RFC 9113
/// section 9.2), so nothing older is offered.
public enum TLSMinimumVersion: String, Sendable, Equatable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// Config spelling: `strict`, `permissive`.
public enum ListenerTLSMode: String, Sendable, Equatable, CaseIterable {
    case strict
    case permissive
}

/// TLS from the proxy to a cluster's endpoints (`clusters[].tls`), with
/// HTTP/2 or HTTP/1.1 offered by ALPN as the cluster's protocol says.
public struct ClusterTLSConfig: Sendable, Equatable {
    /// The server name sent (SNI) and verified against the endpoint's
    /// certificate. Without it the certificate must still chain to a
    /// trusted authority, but no name is checked (endpoints are addresses).
    public var sni: String?
    /// The authorities endpoint certificates must chain to. Default: the
    /// system's trust store.
    public var caCertificates: PEMSource?
    /// A client certificate to present (mutual TLS), with its key.
    public var certificate: PEMSource?
    public var privateKey: PEMSource?
    /// The endpoint's certificate must carry one of these names (URI or DNS
    /// subject alternative names, such as a SPIFFE ID); empty: any name.
    public var identities: [String]
    /// The oldest TLS version offered. Default 1.2.
    public var minimumVersion: TLSMinimumVersion

    public init(
        sni: String? = nil, caCertificates: PEMSource? = nil, certificate: PEMSource? = nil,
        privateKey: PEMSource? = nil, identities: [String] = [], minimumVersion: TLSMinimumVersion = .tls12
    ) {
        self.minimumVersion = minimumVersion
        self.sni = sni
        self.caCertificates = caCertificates
        self.certificate = certificate
        self.privateKey = privateKey
        self.identities = identities
    }
}
