import ArgumentParser
import AsyncHTTPClient
import Foundation
import MeshConfig
import NIOCore

/// `swiftmesh explain REQUEST_ID`: from a failed call's `x-request-id` to
/// what every proxy on its way decided, in one command.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "What every proxy that saw a request decided, and why: authorization, route, endpoints, tries, timings, outcome.",
        discussion: """
            Every response the proxy makes itself carries the request id (x-request-id, also in
            the body or grpc-message). The control plane asks each connected sidecar's admin
            listener (sidecars started with --admin) for its record of the id; --proxy asks one
            proxy's admin listener instead, for a standalone proxy. Proxies keep their last
            1024 requests per event loop.
            """)

    @Argument(help: "The request's x-request-id.")
    var requestID: String

    @OptionGroup var api: ControlPlaneAPIOptions

    @Option(name: .long, help: ArgumentHelp(
        "Ask this proxy's admin listener instead of the control plane: host:port or http://host:port.", valueName: "admin"))
    var proxy: String?

    @Option(name: .shortAndLong, help: "text or json.")
    var output: Format = .text

    enum Format: String, ExpressibleByArgument {
        case text, json
    }

    func validate() throws {
        if let proxy, Self.adminBase(proxy) == nil {
            throw ValidationError("--proxy: \"\(proxy)\" is not an admin listener's host:port or http://host:port, such as 127.0.0.1:9901")
        }
    }

    /// `http://host:port` for `host:port`, `http://host:port` or `http://host:port/`.
    static func adminBase(_ text: String) -> String? {
        let url = text.contains("://") ? text : "http://\(text)"
        guard let parsed = URL(string: url), parsed.scheme == "http", parsed.host != nil, parsed.port != nil,
              parsed.path.isEmpty || parsed.path == "/", parsed.query == nil else { return nil }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    func run() async throws {
        try await CLIFailure.reported {
            let (seen, raw) = if let proxy { try await askProxy(proxy) } else { try await askControlPlane() }
            if output == .json {
                print(raw, terminator: raw.hasSuffix("\n") ? "" : "\n")
            } else {
                print(Self.render(requestID: requestID, seen: seen))
            }
        }
    }

    /// (who, the records) per proxy, and the answer as sent.
    private func askControlPlane() async throws -> ([(String, [[String: Any]])], String) {
        let client = ControlPlaneAPIClient(options: api)
        let escaped = requestID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? requestID
        let answer = try await client.send(
            .GET, "/api/v1/requests/\(escaped)",
            unreachableAdvice: ControlPlaneAPIClient.unreachableAdvice
                + " A standalone proxy is asked at its admin listener: swiftmesh explain \(requestID) --proxy HOST:PORT.")
        let object = try client.expectSuccess(answer)
        let seen = (object["proxies"] as? [[String: Any]] ?? []).map { proxy -> (String, [[String: Any]]) in
            let who = [proxy["service"] as? String, (proxy["sidecar"] as? String).map { "sidecar \($0)" }]
                .compactMap { $0 }.joined(separator: ", ")
            return (who, proxy["requests"] as? [[String: Any]] ?? [])
        }
        return (seen, answer.text)
    }

    private func askProxy(_ admin: String) async throws -> ([(String, [[String: Any]])], String) {
        let escaped = requestID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? requestID
        let base = Self.adminBase(admin) ?? "http://\(admin)"
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await client.execute(HTTPClientRequest(url: "\(base)/requests/\(escaped)"), timeout: .seconds(10))
            body = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw CLIFailure(
                "cannot reach the proxy's admin listener at \(base): \(ConnectionFailure.describe(error)). "
                    + "Give the address of the proxy's admin.listen (a sidecar's --admin) with --proxy.")
        }
        guard response.status.code == 200,
              let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw CLIFailure(String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return ([("proxy \(admin)", object["requests"] as? [[String: Any]] ?? [])], String(buffer: body))
    }

    /// Why a sidecar had no endpoint: the service's registered instances, as the control plane knows them.
    private static func describeRegistered(_ registered: [String: Any]) -> [String] {
        let service = registered["service"] as? String ?? "?"
        let instances = registered["instances"] as? [[String: Any]] ?? []
        var head = "  instances of \(service) registered: \(instances.count)"
        if let subset = registered["subset"] as? [String: String] {
            head += "; the cluster takes those labelled " + PolicyDestination.labelsText(subset)
        }
        if instances.isEmpty {
            head += " (start one, or check its sidecar's --service)"
        }
        return [head] + instances.map { instance in
            let reason = instance["leftOut"] as? String
                ?? "healthy and in the cluster (the sidecar may not have received it yet, or left it out above)"
            return "    \(instance["address"] ?? "?"): \(reason)"
        }
    }

    static func render(requestID: String, seen: [(String, [[String: Any]])]) -> String {
        var lines = ["request \(requestID): seen by \(seen.count) \(seen.count == 1 ? "proxy" : "proxies")"]
        for (who, requests) in seen {
            for request in requests {
                lines.append("")
                lines += describe(request, at: who)
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func describe(_ request: [String: Any], at who: String) -> [String] {
        func text(_ key: String) -> String? { request[key].map { "\($0)" } }
        var lines = ["\(who): listener \(text("listener") ?? "?") (\(text("direction") ?? "?")), \(text("startTime") ?? "")"]
        var outcome = "\(text("method") ?? "") \(text("path") ?? "")  \(text("protocol") ?? "")"
        outcome += request["status"].map { " -> \($0)" } ?? " -> no response (the client went away)"
        if let grpc = request["grpcStatus"] { outcome += ", grpc-status \(grpc)" }
        outcome += " in \(text("durationMs") ?? "?") ms"
        lines.append("  " + outcome)
        if let flags = request["flags"] as? [String], !flags.isEmpty {
            lines.append("  flags: \(flags.joined(separator: ", "))")
        }
        if let error = request["proxyError"] as? [String: Any] {
            lines.append("  the proxy answered itself: \(error["reason"] ?? "") (\(error["message"] ?? ""))")
        }
        if let caller = text("caller") {
            lines.append("  caller: \(caller)")
        }
        if let authorization = request["authorization"] as? [String: Any] {
            lines.append("  authorization: \(authorization["decision"] ?? "") by \(authorization["rule"] ?? "")")
        }
        if let route = text("route") {
            var routing = "  route: \(route)"
            if let cluster = text("cluster") { routing += " -> cluster \(cluster)" }
            if let endpoints = request["endpoints"] as? [String: Any] {
                routing += ", \(endpoints["pickable"] ?? 0) of \(endpoints["total"] ?? 0) endpoints pickable"
            }
            lines.append(routing)
        } else if request["proxyError"] != nil {
            lines.append("  route: none matched, or the request was refused before routing")
        }
        for leftOut in (request["endpoints"] as? [String: Any])?["leftOut"] as? [[String: Any]] ?? [] {
            lines.append("  left out: \(leftOut["endpoint"] ?? "?"), \(leftOut["reason"] ?? "?")")
        }
        if let registered = request["registered"] as? [String: Any] {
            lines += describeRegistered(registered)
        }
        if let breaker = request["circuitBreaker"] as? [String: Any] {
            var line = "  circuit breaker: \(breaker["requests"] ?? "?") of \(breaker["maxRequests"] ?? "?") requests in flight"
            if let pending = breaker["pendingRequests"] {
                line += "; waited for a connection as \(pending) of \(breaker["maxPendingRequests"] ?? "?") pending"
            }
            lines.append(line)
        }
        if let delay = text("faultDelayMs") {
            lines.append("  fault injection held it \(delay) ms")
        }
        for (index, attempt) in (request["tries"] as? [[String: Any]] ?? []).enumerated() {
            var line = "  try \(index + 1): \(attempt["endpoint"] ?? "?"), started at \(attempt["startedMs"] ?? "?") ms"
            if let attached = attempt["attachedMs"] { line += ", sent at \(attached) ms" }
            if let answered = attempt["answeredMs"] { line += ", answered at \(answered) ms" }
            if let cause = attempt["retriedBecause"] { line += "; retried: \(cause)" }
            lines.append(line)
        }
        return lines
    }
}
