import Foundation
import Hummingbird
import Logging
import MeshConfig
import NIOCore

/// The control plane's HTTP JSON API, for the CLI and people: services and
/// instances, sidecars and what they said of their last snapshot, and the
/// resources (`/api/v1/resources`). Errors are JSON too: `{"error": …}`,
/// with `"path"` or `"issues"` (each a field path and a message) when a
/// request body is at fault.
public struct ControlPlaneHTTPAPI: Sendable {
    /// The largest request body taken (an apply of many resources fits).
    static let maxBodyBytes = 4 << 20

    let controlPlane: ControlPlane
    let identity: MeshIdentity

    public init(controlPlane: ControlPlane, identity: MeshIdentity) {
        self.controlPlane = controlPlane
        self.identity = identity
    }

    /// Serves on `address` until cancelled.
    public func run(address: HostPort, logger: Logger) async throws {
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "swiftmesh"),
            onServerRunning: { channel in
                logger.info("HTTP API listening", metadata: ["address": "\(ListeningAddress.text(channel.localAddress))"])
            },
            logger: logger)
        try await app.runUntilCancelled(logger: logger)
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: AdminAuthorization(token: identity.adminToken))
        DashboardAssets.addRoutes(to: router)
        let api = router.group("api/v1")
        api.get("ca") { _, _ in authority() }
        api.post("tokens") { request, _ in await createJoinToken(body: try await body(of: request)) }
        api.get("services") { _, _ in await services() }
        api.get("services/:service/instances") { _, context in
            await instances(of: try context.parameters.require("service"))
        }
        api.post("services/:service/instances") { request, context in
            await registerExternal(service: try context.parameters.require("service"), body: try await body(of: request))
        }
        api.delete("services/:service/instances/:address") { _, context in
            await removeInstance(service: try context.parameters.require("service"), address: try context.parameters.require("address"))
        }
        api.get("instances") { _, _ in await allInstances() }
        api.get("sidecars") { _, _ in await sidecars() }
        api.get("traffic") { _, _ in await traffic() }
        api.get("requests/:id") { _, context in await explain(try context.parameters.require("id")) }
        api.get("resources") { _, _ in await resources(of: MeshResource.Kind.allCases) }
        api.get("resources/:kind") { _, context in
            guard let kind = MeshResource.Kind(word: try context.parameters.require("kind")) else {
                return unknownKind(try context.parameters.require("kind"))
            }
            return await resources(of: [kind])
        }
        api.get("resources/:kind/:name") { _, context in
            await resource(kindWord: try context.parameters.require("kind"), name: try context.parameters.require("name"))
        }
        api.post("resources") { request, _ in await apply(body: try await body(of: request)) }
        api.delete("resources/:kind/:name") { _, context in
            await delete(kindWord: try context.parameters.require("kind"), name: try context.parameters.require("name"))
        }
        return router
    }

    // MARK: Identity

    /// What sidecars and clients trust: the root certificate (public).
    private func authority() -> Response {
        JSONResponse.ok([
            "trustDomain": identity.authority.trustDomain,
            "rootCertificate": identity.authority.rootPEM,
        ])
    }

    /// `{"service": "user", "ttl": "24h"}`: a join token for one service,
    /// shown this once (the store keeps only its digest).
    private func createJoinToken(body: ByteBuffer) async -> Response {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            return JSONResponse.error(.badRequest, "expected a JSON object such as {\"service\": \"user\", \"ttl\": \"24h\"}")
        }
        if let unknown = object.keys.sorted().first(where: { !["service", "ttl"].contains($0) }) {
            return JSONResponse.error(.badRequest, "unknown key; use service and ttl", path: unknown)
        }
        guard let service = object["service"] as? String else {
            return JSONResponse.error(.badRequest, "missing; add the service the token is for, e.g. \"user\"", path: "service")
        }
        if let problem = ServiceNameSyntax.problem(service) {
            return JSONResponse.error(.badRequest, problem, path: "service")
        }
        var lifetime = JoinTokens.defaultLifetime
        if let ttl = object["ttl"] {
            guard let text = ttl as? String, let parsed = DurationSyntax.parse(text),
                  parsed.nanoseconds >= 60 * 1_000_000_000, parsed.nanoseconds <= JoinTokens.maximumLifetimeSeconds * 1_000_000_000
            else {
                return JSONResponse.error(.badRequest, "expected a duration from 1m to 8760h, such as \"24h\"", path: "ttl")
            }
            lifetime = .nanoseconds(parsed.nanoseconds)
        }
        do {
            let created = try await identity.joinTokens.create(service: service, lifetime: lifetime)
            return JSONResponse.with(.created, [
                "token": created.token,
                "service": created.service,
                "expiresAt": ISO8601DateFormatter().string(from: created.expiresAt),
            ])
        } catch {
            return JSONResponse.error(.internalServerError, "the token could not be stored: \(error)")
        }
    }

    // MARK: Services and instances

    private func services() async -> Response {
        var rows: [[String: Any]] = []
        let names = Set(await controlPlane.services).union(await controlPlane.resources(of: .servicePolicy).compactMap {
            if case .servicePolicy(let policy) = $0.spec { policy.service } else { nil }
        })
        for name in names.sorted() {
            var row: [String: Any] = ["name": name, "instances": await controlPlane.instances(of: name).count]
            if let policy = await controlPlane.resourceName(.servicePolicy, of: name) {
                row["policy"] = policy
            }
            rows.append(row)
        }
        return JSONResponse.ok(["services": rows])
    }

    private func instances(of service: String) async -> Response {
        if let problem = ServiceNameSyntax.problem(service) {
            return JSONResponse.error(.badRequest, problem, path: "service")
        }
        return JSONResponse.ok(["instances": await controlPlane.storedInstances(of: service).map(Self.instanceJSON)])
    }

    private func allInstances() async -> Response {
        var rows: [[String: Any]] = []
        for service in await controlPlane.services {
            rows += await controlPlane.storedInstances(of: service).map(Self.instanceJSON)
        }
        return JSONResponse.ok(["instances": rows])
    }

    // MARK: Explain

    /// What every sidecar that saw the request recorded of it; 404 when none did.
    private func explain(_ requestID: String) async -> Response {
        let found = await RequestExplainer(controlPlane: controlPlane).explain(requestID)
        let body: [String: Any] = ["requestId": requestID, "proxies": found.sidecars, "unreachable": found.unreachable]
        guard !found.sidecars.isEmpty else {
            var missing = body
            missing["error"] = "no connected sidecar recorded a request with this id (each keeps its last "
                + "requests; sidecars without --admin cannot be asked)"
            return JSONResponse.with(.notFound, missing)
        }
        return JSONResponse.ok(body)
    }

    // MARK: Traffic

    /// Every service (its instances, how many are healthy, and its traffic
    /// over the last window) and every caller-to-callee edge with traffic.
    private func traffic() async -> Response {
        let summary = await controlPlane.trafficSummary()
        var names = Set(await controlPlane.services).union(summary.services.keys)
        for edge in summary.edges.keys {
            names.formUnion([edge.from, edge.to])
        }
        var services: [[String: Any]] = []
        for name in names.sorted() {
            let instances = await controlPlane.storedInstances(of: name)
            var row: [String: Any] = [
                "name": name, "instances": instances.count, "healthyInstances": instances.filter(\.healthy).count,
            ]
            let traffic = summary.services[name]
            row.merge(Self.statsJSON(traffic?.stats)) { $1 }
            row["source"] = traffic?.source.rawValue ?? NSNull()
            services.append(row)
        }
        let edges = summary.edges.keys.sorted { ($0.from, $0.to) < ($1.from, $1.to) }.map { edge -> [String: Any] in
            var row: [String: Any] = ["from": edge.from, "to": edge.to]
            row.merge(Self.statsJSON(summary.edges[edge])) { $1 }
            return row
        }
        let policyRoutes = await controlPlane.policyRouteMatches().map { matches -> [String: Any] in
            [
                "policy": matches.policy, "service": matches.service,
                "routes": matches.routes.map { $0.map { $0 as Any } ?? NSNull() },
                "catchAll": matches.catchAll.map { $0 as Any } ?? NSNull(),
            ]
        }
        return JSONResponse.ok([
            "windowSeconds": summary.windowSeconds, "services": services, "edges": edges,
            "routeWindowSeconds": Double(RouteMatchMonitor.windowMillis) / 1000, "policyRoutes": policyRoutes,
        ])
    }

    /// Rates and latencies, with JSON null where the window had no requests.
    static func statsJSON(_ stats: TrafficSummary.Stats?) -> [String: Any] {
        func number(_ value: Double?, scale: Double = 1) -> Any {
            value.map { ($0 * scale * 1000).rounded() / 1000 } ?? NSNull()
        }
        return [
            "requestsPerSecond": number(stats?.requestsPerSecond ?? 0),
            "successRate": number(stats?.successRate),
            "latencyP50Ms": number(stats?.p50Seconds, scale: 1000),
            "latencyP99Ms": number(stats?.p99Seconds, scale: 1000),
        ]
    }

    static func instanceJSON(_ stored: Registry.StoredInstance) -> [String: Any] {
        [
            "service": stored.instance.service,
            "address": HostPort(host: stored.instance.key.address, port: stored.instance.key.port).description,
            "protocol": stored.instance.protocolName,
            "labels": stored.instance.labels,
            "registeredBy": stored.sidecarID ?? "external",
            "health": stored.healthy ? "healthy" : "unhealthy",
        ]
    }

    /// `{"address": "192.0.2.9:8080", "protocol": "http1", "labels": {...}}`:
    /// an instance outside the mesh, which never expires.
    private func registerExternal(service: String, body: ByteBuffer) async -> Response {
        if let problem = ServiceNameSyntax.problem(service) {
            return JSONResponse.error(.badRequest, problem, path: "service")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            return JSONResponse.error(.badRequest, "expected a JSON object such as {\"address\": \"192.0.2.9:8080\", \"protocol\": \"http1\"}")
        }
        if let unknown = object.keys.sorted().first(where: { !["address", "protocol", "labels"].contains($0) }) {
            return JSONResponse.error(.badRequest, "unknown key; use address, protocol and labels", path: unknown)
        }
        guard let addressText = object["address"] as? String else {
            return JSONResponse.error(.badRequest, "missing; add the instance's IP address and port, e.g. \"192.0.2.9:8080\"", path: "address")
        }
        guard let address = HostPortSyntax.parse(addressText) else {
            return JSONResponse.error(.badRequest, HostPortSyntax.problem(addressText) ?? "not an address", path: "address")
        }
        if let problem = InstanceSyntax.addressProblem(address.host) {
            return JSONResponse.error(.badRequest, problem, path: "address")
        }
        let protocolText = object["protocol"] as? String ?? UpstreamProtocol.http1.rawValue
        if let problem = InstanceSyntax.protocolProblem(protocolText) {
            return JSONResponse.error(.badRequest, problem, path: "protocol")
        }
        guard let labels = (object["labels"] ?? [String: String]()) as? [String: String] else {
            return JSONResponse.error(.badRequest, "expected an object of label names to string values", path: "labels")
        }
        let instance = RegisteredInstance(
            service: service, address: address.host, port: address.port, protocolName: protocolText, labels: labels)
        switch await controlPlane.registerExternal(instance) {
        case .addressTaken(let sidecar):
            return JSONResponse.error(
                .conflict, "\(address) is the instance of sidecar \(sidecar); stop that sidecar, or register another address",
                path: "address")
        case .serviceInMesh:
            return JSONResponse.error(
                .conflict,
                "\(service)'s instances are sidecars, which callers reach in mutual TLS; register this instance, reached in plaintext, under a service of its own",
                path: "service")
        case nil:
            break
        }
        return JSONResponse.with(.created, Self.instanceJSON(Registry.StoredInstance(instance: instance, sidecarID: nil)))
    }

    private func removeInstance(service: String, address text: String) async -> Response {
        if let problem = ServiceNameSyntax.problem(service) {
            return JSONResponse.error(.badRequest, problem, path: "service")
        }
        guard let address = HostPortSyntax.parse(text) else {
            return JSONResponse.error(.badRequest, HostPortSyntax.problem(text) ?? "not an address", path: "address")
        }
        let key = RegisteredInstance.Key(address: address.host, port: address.port)
        guard await controlPlane.removeInstance(service: service, key: key) else {
            return JSONResponse.error(.notFound, "\(service) has no instance at \(address); swiftmesh get instances \(service) lists them")
        }
        return JSONResponse.ok(["removed": ["service": service, "address": address.description]])
    }

    // MARK: Sidecars

    private func sidecars() async -> Response {
        let rows = await controlPlane.subscribers.values.sorted { $0.sidecarID < $1.sidecarID }.map { subscriber in
            var row: [String: Any] = [
                "id": subscriber.sidecarID, "upstreams": subscriber.upstreams, "sentVersion": subscriber.sentVersion,
            ]
            row["ackedVersion"] = subscriber.ackedVersion
            if let refusal = subscriber.refusal {
                row["refusal"] = ["version": refusal.version, "reason": refusal.reason]
            }
            return row
        }
        return JSONResponse.ok(["sidecars": rows])
    }

    // MARK: Resources

    private func resources(of kinds: [MeshResource.Kind]) async -> Response {
        var rows: [[String: Any]] = []
        for kind in kinds {
            rows += await controlPlane.resources(of: kind).map(Self.resourceJSON)
        }
        return JSONResponse.ok(["resources": rows])
    }

    private func resource(kindWord: String, name: String) async -> Response {
        guard let kind = MeshResource.Kind(word: kindWord) else { return unknownKind(kindWord) }
        guard let found = await controlPlane.resources(of: kind).first(where: { $0.name == name }) else {
            return JSONResponse.error(.notFound, "no \(kind.rawValue) named \(name)")
        }
        return JSONResponse.ok(Self.resourceJSON(found))
    }

    /// The resource in its envelope, as it can be applied again (a `status`
    /// is ignored then). A ServicePolicy's status shows the settings its
    /// service's clusters run with: its keys over the mesh's defaults.
    static func resourceJSON(_ resource: MeshResource) -> [String: Any] {
        var envelope: [String: Any] = [
            "apiVersion": MeshResource.apiVersion, "kind": resource.kind.rawValue, "metadata": ["name": resource.name],
            "spec": Self.object(resource.specJSON),
        ]
        if case .servicePolicy(let policy) = resource.spec {
            envelope["status"] = ["effective": Self.object(ServicePolicyJSON.renderEffectiveSettings(policy))]
        }
        return envelope
    }

    private static func object(_ json: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) ?? [:]
    }

    /// The body is YAML (JSON is YAML too), one or several documents; all of
    /// them are stored, or none.
    private func apply(body: ByteBuffer) async -> Response {
        let resources: [MeshResource]
        do {
            resources = try ResourceLoader.decode(yaml: String(buffer: body))
        } catch {
            return JSONResponse.with(.badRequest, [
                "error": "the resources were refused; nothing was stored",
                "issues": error.issues.map { ["path": $0.path, "message": $0.message] },
            ])
        }
        let paths = resources.count == 1 ? [""] : resources.indices.map { "documents[\($0)]" }
        do {
            let applied = try await controlPlane.apply(resources, paths: paths)
            return JSONResponse.ok(["applied": applied.map {
                ["kind": $0.kind.rawValue, "name": $0.name, "result": $0.outcome.rawValue]
            }])
        } catch {
            switch error {
            case .refused(let refusal):
                return JSONResponse.with(.conflict, [
                    "error": "the resources were refused; nothing was stored",
                    "issues": [["path": refusal.path, "message": refusal.message]],
                ])
            case .storage(let message):
                return JSONResponse.error(.internalServerError, message)
            }
        }
    }

    private func delete(kindWord: String, name: String) async -> Response {
        guard let kind = MeshResource.Kind(word: kindWord) else { return unknownKind(kindWord) }
        do {
            guard try await controlPlane.delete(kind: kind, name: name) else {
                return JSONResponse.error(.notFound, "no \(kind.rawValue) named \(name)")
            }
        } catch {
            return JSONResponse.error(.internalServerError, "the control plane could not delete it: \(error)")
        }
        return JSONResponse.ok(["deleted": ["kind": kind.rawValue, "name": name]])
    }

    private func unknownKind(_ word: String) -> Response {
        JSONResponse.error(.notFound, "unknown kind \"\(word)\"; use \(MeshResource.Kind.allCases.map(\.plural).joined(separator: ", "))")
    }

    private func body(of request: Request) async throws -> ByteBuffer {
        try await request.body.collect(upTo: Self.maxBodyBytes)
    }
}

/// JSON answers, encoded with Foundation on the control path.
enum JSONResponse {
    static func ok(_ object: Any) -> Response {
        with(.ok, object)
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, path: String? = nil) -> Response {
        var object: [String: Any] = ["error": message]
        object["path"] = path
        return with(status, object)
    }

    static func with(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        var body = ByteBuffer(bytes: data)
        body.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
