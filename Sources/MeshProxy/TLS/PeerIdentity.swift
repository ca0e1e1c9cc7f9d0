import MeshConfig
import NIOCore
import NIOSSL
import X509

/// Who is at the other end of a TLS connection, as its certificate says: the
/// first URI subject alternative name (a mesh identity is a SPIFFE ID,
/// `spiffe://<trust-domain>/service/<name>`), else the first DNS name, else
/// the subject. Read once per connection, when its first request arrives.
enum PeerIdentity {
    /// What a client certificate names.
    struct Client: Sendable, Equatable {
        /// For the app, in `swiftmesh-client-identity`.
        var text: String
        /// Whether `text` is a URI name (a SPIFFE ID): authorization decides
        /// only on those, so that a DNS name or subject spelled like a SPIFFE
        /// ID by another authority is not taken for one.
        var isURI: Bool

        /// The caller in metrics, where label values must stay few: the
        /// service of a mesh identity, else `other`.
        var metricLabel: String {
            isURI ? SPIFFEID.parse(text)?.service ?? "other" : "other"
        }
    }

    /// The metric label of a connection without a client certificate.
    static let anonymousMetricLabel = "none"

    /// The identity of a server-side connection's client; nil without TLS or
    /// without a client certificate.
    static func ofClient(on channel: Channel) -> Client? {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
              let certificate = handler.peerCertificate else { return nil }
        return of(certificate)
    }

    static func of(_ certificate: NIOSSLCertificate) -> Client? {
        guard let parsed = parse(certificate) else { return nil }
        let names = alternativeNames(of: parsed)
        if let name = names.first(where: { $0.isURI }) ?? names.first {
            return headerSafe(name.text, spaces: false).map { Client(text: $0, isURI: name.isURI) }
        }
        return headerSafe(parsed.subject.description, spaces: true).map { Client(text: $0, isURI: false) }
    }

    /// Every URI and DNS subject alternative name of the certificate.
    static func names(of certificate: NIOSSLCertificate) -> [String] {
        parse(certificate).map { alternativeNames(of: $0).map(\.text) } ?? []
    }

    private static func parse(_ certificate: NIOSSLCertificate) -> Certificate? {
        guard let der = try? certificate.toDERBytes() else { return nil }
        return try? Certificate(derEncoded: der)
    }

    /// URI and DNS names, in the certificate's order.
    private static func alternativeNames(of certificate: Certificate) -> [(text: String, isURI: Bool)] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            switch name {
            case .uniformResourceIdentifier(let uri): (uri, true)
            case .dnsName(let dns): (dns, false)
            default: nil
            }
        }
    }

    /// The identity becomes a header value: a certificate's names are not
    /// checked for control characters by the parser, and CR or LF would
    /// split the field on its way to an HTTP/1.1 endpoint.
    static let maximumLength = 512

    private static func headerSafe(_ text: String, spaces: Bool) -> String? {
        let lowest: UInt8 = spaces ? 0x20 : 0x21
        guard !text.isEmpty, text.utf8.count <= maximumLength,
              text.utf8.allSatisfy({ $0 >= lowest && $0 <= 0x7E }) else { return nil }
        return text
    }

    /// Whether a server-side connection runs TLS (a permissive listener
    /// serves both).
    static func isTLS(_ channel: Channel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
    }
}
