import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system `swiftmesh demo` runs on loopback, every piece a process of
/// its own as it would be on separate hosts: the control plane; three User
/// instances (`user-1` and `user-2` labelled version=v1, `user-3` v2) and two
/// Alive instances, each an example service with its sidecar; and the
/// Gateway with its sidecar, which is how the gateway reaches both services.
/// Sidecars talk mutual TLS with certificates from the control plane, and
/// authorization policies let only the gateway call user and alive.
///
/// `@unchecked Sendable`: `processes` and `started` are written only by
/// `start`, before the traffic, scenario and signal tasks use the mesh;
/// everything else is immutable or Sendable.
final class DemoMesh: @unchecked Sendable {
    struct Instance {
        let service: String
        let name: String
        let version: String?
        let appPort: Int
        let inboundPort: Int
        let adminPort: Int
    }

    let directory: URL
    let instances: [Instance]
    let controlPlanePort: Int
    let controlPlaneHTTPPort: Int
    let gatewayPort: Int
    /// The gateway sidecar's local addresses for user and alive (its `--upstream`s).
    let gatewayUserPort: Int
    let gatewayAlivePort: Int
    let gatewayInboundPort: Int
    let gatewayAdminPort: Int
    let http: HTTPClient
    private var processes: [String: DemoProcess] = [:]
    /// Names in start order; stopped in reverse.
    private var started: [String] = []

    static let authorizationPolicies = """
        apiVersion: swiftmesh.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: { name: user-callers }
        spec:
          service: user
          default: deny
          rules:
            - from: [gateway]
              grpc: { service: example.user.v1.UserService }
        ---
        apiVersion: swiftmesh.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: { name: alive-callers }
        spec:
          service: alive
          default: deny
          rules:
            - from: [gateway]
              grpc: { service: example.alive.v1.AliveService }
        """

    /// `--scenario canary`: 90% of user calls to version v1, 10% to v2.
    static let canarySplit = """
        apiVersion: swiftmesh.dev/v1alpha1
        kind: ServicePolicy
        metadata: { name: user }
        spec:
          service: user
          routes:
            - match: { grpc: { service: example.user.v1.UserService } }
              split:
                - { subset: { version: v1 }, weight: 90 }
                - { subset: { version: v2 }, weight: 10 }
        """

    init(directory: URL) throws {
        self.directory = directory
        let services = [("user", 3), ("alive", 2)]
        var ports = try Self.freePorts(3 * services.map(\.1).reduce(0, +) + 7)[...]
        func next() -> Int { ports.removeFirst() }
        var instances: [Instance] = []
        for (service, count) in services {
            for index in 1...count {
                instances.append(Instance(
                    service: service, name: "\(service)-\(index)",
                    version: service == "user" ? (index == 3 ? "v2" : "v1") : nil,
                    appPort: next(), inboundPort: next(), adminPort: next()))
            }
        }
        self.instances = instances
        controlPlanePort = next()
        controlPlaneHTTPPort = next()
        gatewayPort = next()
        gatewayUserPort = next()
        gatewayAlivePort = next()
        gatewayInboundPort = next()
        gatewayAdminPort = next()
        http = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    var controlPlaneURL: String { "http://127.0.0.1:\(controlPlaneHTTPPort)" }
    var gatewayURL: String { "http://127.0.0.1:\(gatewayPort)" }
    private var controlPlaneData: URL { directory.appendingPathComponent("control-plane") }

    /// Starts everything and returns once the gateway answers through its
    /// sidecar and that sidecar knows every instance. Throws, naming the
    /// process and its log, when a piece does not come up in time.
    func start(progress: (String) -> Void) async throws {
        progress("starting the control plane")
        try launch("control-plane", [
            "control-plane", "--listen", "127.0.0.1:\(controlPlanePort)", "--http", "127.0.0.1:\(controlPlaneHTTPPort)",
            "--data-dir", controlPlaneData.path, "--heartbeat-interval", "500ms",
        ])
        try await waitFor("control-plane", "its HTTP API to answer") {
            await self.status(of: "\(self.controlPlaneURL)/api/v1/services") == 200
        }
        try await apply(Self.authorizationPolicies)
        let api = try controlPlaneAPI()
        var tokens: [String: String] = [:]
        for service in ["user", "alive", "gateway"] {
            let made = try api.expectSuccess(try await api.send(
                .POST, "/api/v1/tokens", body: #"{"service": "\#(service)", "ttl": "24h"}"#))
            tokens[service] = made["token"] as? String
        }

        progress("starting 3 user and 2 alive instances and the gateway, each with its sidecar")
        for instance in instances {
            var labels: [String] = []
            if let version = instance.version {
                labels = ["--label", "version=\(version)"]
            }
            try launch(instance.name, [
                "example", instance.service, "--listen", "127.0.0.1:\(instance.appPort)", "--instance", instance.name,
            ])
            try launch("\(instance.name)-sidecar", sidecarArguments(
                service: instance.service, appPort: instance.appPort, appProtocol: "http2",
                inboundPort: instance.inboundPort, adminPort: instance.adminPort) + labels,
                token: tokens[instance.service])
        }
        try launch("gateway", [
            "example", "gateway", "--listen", "127.0.0.1:\(gatewayPort)",
            "--user", "127.0.0.1:\(gatewayUserPort)", "--alive", "127.0.0.1:\(gatewayAlivePort)",
        ])
        try launch("gateway-sidecar", sidecarArguments(
            service: "gateway", appPort: gatewayPort, appProtocol: "http1",
            inboundPort: gatewayInboundPort, adminPort: gatewayAdminPort) + [
            "--upstream", "user=127.0.0.1:\(gatewayUserPort)", "--upstream", "alive=127.0.0.1:\(gatewayAlivePort)",
        ], token: tokens["gateway"])

        for (name, adminPort) in instances.map({ ($0.name, $0.adminPort) }) + [("gateway", gatewayAdminPort)] {
            try await waitFor("\(name)-sidecar", "/ready") {
                await self.status(of: "http://127.0.0.1:\(adminPort)/ready") == 200
            }
        }
        try await waitFor("gateway-sidecar", "every user and alive instance in its clusters") {
            let endpoints = await self.gatewayEndpoints()
            return endpoints["user"] == 3 && endpoints["alive"] == 2
        }
        try await waitFor("gateway", "GET /users/1 and /alive to answer 200") {
            let user = await self.status(of: "\(self.gatewayURL)/users/1")
            return user == 200 ? await self.status(of: "\(self.gatewayURL)/alive") == 200 : false
        }
        // A process that died on the way (its port taken, say) would leave the demo a piece short.
        if let name = started.first(where: { processes[$0]?.isRunning == false }), let process = processes[name] {
            throw CLIFailure("\(name) exited during startup; see \(process.logPath)")
        }
    }

    /// Waits (at most 10 s) until the gateway's sidecar has a cluster of this
    /// name, such as the `user[version=v1]` a split makes: the control
    /// plane's push has arrived and is in use.
    func waitForGatewayCluster(_ name: String) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await gatewayEndpoints()[name] == nil {
            guard ContinuousClock.now < deadline else {
                throw CLIFailure("the gateway's sidecar has no cluster \(name) 10 s after the apply")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func sidecarArguments(
        service: String, appPort: Int, appProtocol: String, inboundPort: Int, adminPort: Int
    ) -> [String] {
        [
            "sidecar", "--control-plane", "127.0.0.1:\(controlPlanePort)",
            "--control-plane-ca", controlPlaneData.appendingPathComponent("ca/root.pem").path,
            "--service", service, "--app", "127.0.0.1:\(appPort)", "--app-protocol", appProtocol,
            "--inbound", "127.0.0.1:\(inboundPort)", "--admin", "127.0.0.1:\(adminPort)",
        ]
    }

    private func launch(_ name: String, _ arguments: [String], token: String? = nil) throws {
        let process = try DemoProcess(
            name: name, arguments: arguments, environment: token.map { ["SWIFTMESH_TOKEN": $0] } ?? [:],
            directory: directory)
        processes[name] = process
        started.append(name)
    }

    /// Polls `condition` every 100 ms for at most 30 s; fails early when the process has exited.
    private func waitFor(_ name: String, _ what: String, _ condition: @escaping () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if await condition() { return }
            if let process = processes[name], !process.isRunning {
                throw CLIFailure("\(name) exited while the demo waited for \(what); see \(process.logPath)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CLIFailure("\(name): no \(what) within 30 s; see \(processes[name]?.logPath ?? directory.path)")
    }

    /// A GET's status and body, or nil when nothing answered within 2 s.
    private func get(_ url: String) async -> (status: Int, body: ByteBuffer)? {
        guard let response = try? await http.execute(HTTPClientRequest(url: url), timeout: .seconds(2)),
              let body = try? await response.body.collect(upTo: 16 << 20) else { return nil }
        return (Int(response.status.code), body)
    }

    /// A GET's status, or nil when nothing answered.
    func status(of url: String) async -> Int? {
        await get(url)?.status
    }

    /// How many endpoints the gateway's sidecar has in each cluster.
    func gatewayEndpoints() async -> [String: Int] {
        guard let body = await get("http://127.0.0.1:\(gatewayAdminPort)/clusters")?.body,
            let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let clusters = object["clusters"] as? [[String: Any]] else { return [:] }
        var counts: [String: Int] = [:]
        for cluster in clusters {
            if let name = cluster["name"] as? String, let endpoints = cluster["endpoints"] as? [Any] {
                counts[name] = endpoints.count
            }
        }
        return counts
    }

    /// Retries the gateway's sidecar has sent, from its /metrics.
    func gatewayRetries() async -> Int? {
        guard let body = await get("http://127.0.0.1:\(gatewayAdminPort)/metrics")?.body else { return nil }
        var total = 0.0
        for line in String(buffer: body).split(separator: "\n") where line.hasPrefix("swiftmesh_cluster_retries_total{") {
            total += line.split(separator: " ").last.flatMap { Double($0) } ?? 0
        }
        return Int(total)
    }

    /// Applies resources through the control plane's API.
    func apply(_ yaml: String) async throws {
        let api = try controlPlaneAPI()
        _ = try api.expectSuccess(try await api.send(.POST, "/api/v1/resources", body: yaml))
    }

    /// The CLI's own client for the control plane's HTTP API, with its admin token.
    private func controlPlaneAPI() throws -> ControlPlaneAPIClient {
        ControlPlaneAPIClient(options: try ControlPlaneAPIOptions.parse([
            "--control-plane", controlPlaneURL,
            "--admin-token-file", controlPlaneData.appendingPathComponent("admin-token").path,
        ]))
    }

    /// SIGKILLs an instance's app and sidecar, as a crashed host would go.
    func crash(_ instance: String) {
        processes[instance]?.kill()
        processes["\(instance)-sidecar"]?.kill()
    }

    /// SIGKILLs every process still running: the second Ctrl-C.
    func killAll() {
        for process in processes.values {
            process.kill()
        }
    }

    /// Stops everything: apps and sidecars at once (each sidecar deregisters
    /// and drains), then the control plane; SIGKILL for any that take over 10 s.
    func stop() async {
        let pieces = started.filter { $0 != "control-plane" }.compactMap { processes[$0] }
        await withTaskGroup(of: Void.self) { group in
            for process in pieces {
                group.addTask { await process.stop(grace: .seconds(10)) }
            }
        }
        await processes["control-plane"]?.stop(grace: .seconds(10))
        try? await http.shutdown()
    }

    /// `count` distinct ports the kernel hands out now, for processes started
    /// a moment later. The sockets stay bound until all are picked: a port
    /// released at once could be handed out again for the next one.
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        return try (0..<count).map { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw CLIFailure("cannot open a socket to find a free port") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard bound else { throw CLIFailure("cannot bind a socket on 127.0.0.1 to find a free port") }
            return Int(UInt16(bigEndian: address.sin_port))
        }
    }
}
