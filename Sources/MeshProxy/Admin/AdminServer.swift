import Foundation
import MeshConfig
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/ready`, `/metrics`, `/config`, `/clusters`,
/// `/requests/{id}`. It runs
/// on the control path (answers are computed by the `ProxyServer` actor), so
/// Foundation's JSON encoder is fine here.
enum AdminServer {
    static func bind(_ address: HostPort, group: EventLoopGroup, proxy: ProxyServer) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(proxy: proxy))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: String
    }

    static func respond(method: HTTPMethod, path: Substring, proxy: ProxyServer) async -> Response {
        guard method == .GET || method == .HEAD else {
            return Response(status: .methodNotAllowed, contentType: "text/plain", body: "the admin API is read-only: use GET\n")
        }
        switch path {
        case "/ready":
            let readiness = await proxy.readiness()
            return Response(status: readiness.ready ? .ok : .serviceUnavailable, contentType: "text/plain", body: readiness.reason + "\n")
        case "/metrics":
            let stats = await proxy.statsSnapshot()
            return Response(status: .ok, contentType: PrometheusExposition.contentType, body: PrometheusExposition.render(stats))
        case "/config":
            let config = await proxy.config
            return Response(status: .ok, contentType: "application/json", body: ConfigJSON.render(config) + "\n")
        case "/clusters":
            let clusters = await proxy.clusterReports()
            return Response(status: .ok, contentType: "application/json", body: json(["clusters": clusters]))
        case _ where path.hasPrefix(requestsPrefix) && path.count > requestsPrefix.count:
            let requestID = String(path.dropFirst(requestsPrefix.count)).removingPercentEncoding ?? ""
            guard let found = await proxy.explain(requestID: requestID) else {
                return Response(
                    status: .notFound, contentType: "text/plain",
                    body: "no recent request with id \(requestID) on this proxy (it keeps the last \(RecentRequests.defaultCapacity) per event loop)\n")
            }
            return Response(status: .ok, contentType: "application/json", body: found)
        default:
            return Response(
                status: .notFound, contentType: "text/plain",
                body: "unknown admin path \(path); try /ready, /metrics, /config, /clusters or /requests/{request id}\n")
        }
    }

    /// `/requests/{id}`: what the proxy decided for the recent requests with that `x-request-id`.
    static let requestsPrefix = "/requests/"

    private static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// Answers one admin request at a time on its connection.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let proxy: ProxyServer
    private var request: HTTPRequestHead?

    init(proxy: ProxyServer) {
        self.proxy = proxy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let proxy = self.proxy
            let path = String(RouteMatcher.path(ofTarget: head.uri))
            context.eventLoop.makeFutureWithTask {
                await AdminServer.respond(method: head.method, path: Substring(path), proxy: proxy)
            }
            .assumeIsolated()
            .whenSuccess { response in
                self.write(response, for: head, context: context)
            }
        }
    }

    private func write(_ response: AdminServer.Response, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: response.body.utf8.count)
        body.writeString(response.body)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        if !request.isKeepAlive {
            headers.add(name: "connection", value: "close")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !request.isKeepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
