import MeshConfig
import NIOCore
import NIOSSL

/// The TLS contexts of one config, built (and its PEM files read) when the
/// config is applied, so that no connection reads a file.
struct TLSContexts: Sendable {
    var listeners: [String: ListenerTLS] = [:]
    var clusters: [String: UpstreamTLS] = [:]

    init() {}

    /// Throws the first setting that cannot be loaded, at its field path.
    /// Contexts whose settings and loaded PEM are those of `previous` are
    /// kept, so a reload that leaves TLS alone keeps the clusters' connections.
    init(_ config: ProxyConfig, previous: TLSContexts = TLSContexts()) throws {
        for (index, listener) in config.listeners.enumerated() {
            guard let tls = listener.tls else { continue }
            if let kept = previous.listeners[listener.name], kept.settings == tls, tls.isInMemory {
                listeners[listener.name] = kept
                continue
            }
            let context = try TLSContextLoader.serverContext(tls, path: "listeners[\(index)].tls")
            listeners[listener.name] = ListenerTLS(context: context, mode: tls.mode, settings: tls)
        }
        for (index, cluster) in config.clusters.enumerated() {
            guard let tls = cluster.tls else { continue }
            // PEM held in memory is part of the settings: equal settings, same context, nothing to build.
            // Files are read again, since they may have been renewed in place.
            if let kept = previous.clusters[cluster.name], kept.settings == tls, kept.protocolKind == cluster.protocolKind,
               tls.isInMemory {
                clusters[cluster.name] = kept
                continue
            }
            let (context, fingerprint) = try TLSContextLoader.clientContext(
                tls, protocol: cluster.protocolKind, path: "clusters[\(index)].tls")
            let built = UpstreamTLS(
                context: context, settings: tls, protocolKind: cluster.protocolKind, fingerprint: fingerprint)
            if let kept = previous.clusters[cluster.name], kept.isBuilt(like: built) {
                clusters[cluster.name] = kept
            } else {
                clusters[cluster.name] = built
            }
        }
    }
}

/// How a listener's connections start: TLS only, or TLS and plaintext.
struct ListenerTLS: Sendable {
    let context: NIOSSLContext
    let mode: ListenerTLSMode
    /// What the context was built from.
    let settings: ListenerTLSConfig
}

/// How connections to a cluster's endpoints start TLS.
final class UpstreamTLS: Sendable {
    let context: NIOSSLContext
    let settings: ClusterTLSConfig
    let protocolKind: UpstreamProtocol
    /// Of the PEM the context was built from (`PEMReader`).
    let fingerprint: Int

    /// Sent as SNI and verified against the endpoint's certificate.
    var serverName: String? { settings.sni }

    init(context: NIOSSLContext, settings: ClusterTLSConfig, protocolKind: UpstreamProtocol, fingerprint: Int) {
        self.context = context
        self.settings = settings
        self.protocolKind = protocolKind
        self.fingerprint = fingerprint
    }

    /// The endpoint's certificate carries one of the cluster's `identities`
    /// (none listed: any does). Checked once per connection, after the
    /// handshake and before any request is sent on it.
    func checkIdentity(of channel: Channel) throws {
        guard !settings.identities.isEmpty else { return }
        let certificate = try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
        let names = certificate.map { PeerIdentity.names(of: $0) } ?? []
        guard names.contains(where: { settings.identities.contains($0) }) else {
            throw UnexpectedIdentity(presented: names)
        }
    }

    struct UnexpectedIdentity: Error, CustomStringConvertible {
        var presented: [String]
        var description: String {
            "the endpoint's certificate names \(presented.isEmpty ? "no identity" : presented.joined(separator: ", ")), none of the cluster's identities"
        }
    }

    /// Same settings, protocol and PEM: a reload keeps this one, and with it
    /// the cluster's connections.
    func isBuilt(like other: UpstreamTLS) -> Bool {
        settings == other.settings && protocolKind == other.protocolKind && fingerprint == other.fingerprint
    }
}
