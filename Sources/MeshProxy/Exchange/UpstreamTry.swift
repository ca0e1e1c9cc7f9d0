import MeshUpstream
import NIOCore
import NIOHTTP1

/// One try of a request on one endpoint, like Envoy's `UpstreamRequest`:
/// what the endpoint's pool queues and serves, and what the connection or
/// stream that serves it delivers the response to. It passes everything on
/// to its exchange until the exchange ends it; after that nothing of this
/// try can reach the request (a late connection goes back to its pool
/// unused), so a retry never hears from the try before it.
final class UpstreamTry: UpstreamRequest {
    /// The try's number, 1 for the first; a resend after a refusal keeps it.
    let number: Int
    let endpoint: EndpointState
    /// Strong until `end`: the pool's queue or the upstream may be the only
    /// holders of the exchange while the try waits.
    private var exchange: ProxyExchange?
    /// The connection or stream serving the try, once the pool gave one.
    private(set) var upstream: (any ExchangeUpstream)?
    /// In the pool's queue, counted among the cluster's pending requests.
    private var isQueued = false

    init(number: Int, endpoint: EndpointState, exchange: ProxyExchange) {
        self.number = number
        self.endpoint = endpoint
        self.exchange = exchange
    }

    /// The exchange is done with this try: it leaves its pool's queue, and a
    /// connection or stream still serving it is given up (an HTTP/1.1
    /// connection closes, an HTTP/2 stream is reset).
    func end() {
        exchange = nil
        if isQueued {
            isQueued = false
            endpoint.pool.stopWaiting(self)
        }
        if let upstream {
            self.upstream = nil
            upstream.abort()
        }
    }

    /// The connection or stream came when the try no longer wanted it: it
    /// goes back unused (an HTTP/1.1 connection to its pool).
    func giveBackConnection() {
        if let upstream {
            self.upstream = nil
            upstream.abandon()
        }
    }

    // MARK: UpstreamRequest

    var isWaitingForConnection: Bool { exchange != nil && upstream == nil }

    func queued(pendingRequests: Int) {
        isQueued = true
        exchange?.tryQueued(pendingRequests: pendingRequests)
    }

    func connectionReady(_ upstream: any ExchangeUpstream) {
        isQueued = false
        guard let exchange else {
            upstream.abandon()
            return
        }
        self.upstream = upstream
        exchange.tryConnected(self)
    }

    func failed(_ failure: UpstreamFailure) {
        isQueued = false
        upstream = nil
        exchange?.tryFailed(self, failure)
    }

    func refused() {
        upstream = nil
        exchange?.tryRefused(self)
    }

    func received(_ part: HTTPClientResponsePart) {
        if case .end = part {
            // The response is whole: the connection or stream is done with the try.
            upstream = nil
        }
        exchange?.tryReceived(self, part)
    }

    func readComplete() {
        exchange?.flushDownstream()
    }

    var clientIsReading: Bool { exchange?.downstreamIsWritable ?? true }

    func endpointBecameWritable() {
        exchange?.upstreamBecameWritable()
    }
}

extension UpstreamFailure {
    /// The answer a request gets when its try fails this way and is not retried.
    var proxyError: ProxyError {
        switch self {
        case .connectFailure: .connectFailure
        case .pendingOverflow: .overflow(.maxPendingRequests)
        case .reset: .upstreamReset
        }
    }
}
