import MeshConfig
import NIOCore

/// What every request on one client connection shares. A class: each
/// exchange reads it through its `ExchangeDownstream` several times, and a
/// struct of strings and optionals was copied (and its strings retained) each time.
final class DownstreamConnectionInfo: Sendable {
    let listenerName: String
    /// The listener's name interned in the loop's stats.
    let listenerLabel: Int
    /// The listener's `direction`, a label of its metrics.
    let direction: TrafficDirection
    /// The client's IP, appended to `x-forwarded-for`.
    let clientIP: String?
    /// HTTP/2 (each request on its own stream) or HTTP/1.1.
    let isHTTP2: Bool
    /// The listener's `idleTimeout`: the connection closes after this long without a request.
    let idleTimeout: TimeAmount
    /// What one client connection may make the proxy hold (`ListenerLimits`).
    let limits: DownstreamLimits
    /// The connection runs TLS: `x-forwarded-proto` is https.
    let isTLS: Bool
    /// The identity in the client's certificate (see `PeerIdentity`); nil without one.
    let client: PeerIdentity.Client?

    /// Sent to the endpoint as `swiftmesh-client-identity`.
    var clientIdentity: String? { client?.text }
    /// What authorization decides on: only a URI name (a SPIFFE ID) counts.
    var authorizedIdentity: String? { client?.isURI == true ? client?.text : nil }
    /// The caller as a metric label (`PeerIdentity.Client.metricLabel`),
    /// interned in the loop's stats once per connection.
    let callerLabel: Int

    init(
        listenerName: String, listenerLabel: Int, direction: TrafficDirection, clientIP: String?, isHTTP2: Bool,
        idleTimeout: TimeAmount, limits: DownstreamLimits, isTLS: Bool = false, client: PeerIdentity.Client? = nil,
        callerLabel: Int = 0
    ) {
        self.listenerName = listenerName
        self.listenerLabel = listenerLabel
        self.direction = direction
        self.clientIP = clientIP
        self.isHTTP2 = isHTTP2
        self.idleTimeout = idleTimeout
        self.limits = limits
        self.isTLS = isTLS
        self.client = client
        self.callerLabel = callerLabel
    }
}
