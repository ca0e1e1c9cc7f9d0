import ArgumentParser
import Foundation
import MeshConfig

/// `swiftmesh apply -f FILE`: resources (YAML, one or several documents) to
/// the control plane, all stored or none.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply resources (ServicePolicy, AuthorizationPolicy) from a YAML file to the control plane.",
        discussion: "Every resource of the file is stored, or none: a refused file prints each problem with its field path.")

    @Option(name: .shortAndLong, help: "The YAML file; - reads standard input.")
    var file: String

    @OptionGroup var api: ControlPlaneAPIOptions

    func run() async throws {
        try await CLIFailure.reported {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw CLIFailure("\(file): cannot be read")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            let client = ControlPlaneAPIClient(options: api)
            let answer = try client.expectSuccess(try await client.send(.POST, "/api/v1/resources", body: text))
            for applied in answer["applied"] as? [[String: Any]] ?? [] {
                print("\((applied["kind"] as? String ?? "").lowercased())/\(applied["name"] as? String ?? "") \(applied["result"] as? String ?? "")")
            }
        }
    }
}

/// `swiftmesh get services|instances|sidecars|policies [NAME] [-o table|json|yaml]`.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show services, instances, sidecars or resources (policies, authorizationpolicies) of the control plane.",
        discussion: """
            get services                  every service with its instance count and policy
            get instances [SERVICE]       instances, with who registered them (a sidecar, or external)
            get sidecars                  subscribed sidecars, the snapshot version each acknowledged or refused
            get ca                        the mesh's root certificate (PEM), for sidecars' --control-plane-ca
            get policies [NAME]           ServicePolicy resources, with what each route matched in the last
                                          minute; -o yaml prints them ready to apply again
            get authorizationpolicies     AuthorizationPolicy resources (also: authz)
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, yaml
    }

    @Argument(help: "services, instances, sidecars, or a resource kind (policies, authorizationpolicies).")
    var what: String

    @Argument(help: "A service (with instances) or a resource name.")
    var name: String?

    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: Format = .table

    @OptionGroup var api: ControlPlaneAPIOptions

    func run() async throws {
        try await CLIFailure.reported {
            let client = ControlPlaneAPIClient(options: api)
            switch what.lowercased() {
            case "services", "service":
                let answer = try await client.send(.GET, "/api/v1/services")
                var rows = try client.expectSuccess(answer)["services"] as? [[String: Any]] ?? []
                if let name { rows = rows.filter { $0["name"] as? String == name } }
                try show(answer, rows: rows, columns: [("NAME", "name"), ("INSTANCES", "instances"), ("POLICY", "policy")])
            case "instances", "instance":
                let path = name.map { "/api/v1/services/\($0)/instances" } ?? "/api/v1/instances"
                let answer = try await client.send(.GET, path)
                let rows = try client.expectSuccess(answer)["instances"] as? [[String: Any]] ?? []
                try show(answer, rows: rows, columns: [
                    ("SERVICE", "service"), ("ADDRESS", "address"), ("PROTOCOL", "protocol"), ("HEALTH", "health"),
                    ("LABELS", "labels"), ("REGISTERED BY", "registeredBy"),
                ])
            case "ca":
                // The mesh's root, PEM, for sidecars' --control-plane-ca.
                let answer = try await client.send(.GET, "/api/v1/ca")
                print(try client.expectSuccess(answer)["rootCertificate"] as? String ?? "", terminator: "")
            case "sidecars", "sidecar":
                let answer = try await client.send(.GET, "/api/v1/sidecars")
                var rows = try client.expectSuccess(answer)["sidecars"] as? [[String: Any]] ?? []
                if let name { rows = rows.filter { $0["id"] as? String == name } }
                try show(answer, rows: rows, columns: [
                    ("ID", "id"), ("UPSTREAMS", "upstreams"), ("SENT", "sentVersion"), ("ACKED", "ackedVersion"),
                    ("REFUSED", "refusal"),
                ])
            default:
                guard let kind = MeshResource.Kind(word: what) else {
                    throw CLIFailure("get \(what): unknown; use services, instances, sidecars, ca or \(MeshResource.Kind.allCases.map(\.plural).joined(separator: ", "))")
                }
                try await showResources(kind, client: client)
            }
        }
    }

    private func showResources(_ kind: MeshResource.Kind, client: ControlPlaneAPIClient) async throws {
        let path = "/api/v1/resources/\(kind.plural)" + (name.map { "/\($0)" } ?? "")
        let answer = try await client.send(.GET, path)
        let object = try client.expectSuccess(answer)
        let resources = name == nil ? object["resources"] as? [[String: Any]] ?? [] : [object]
        switch output {
        case .json:
            print(answer.text, terminator: "")
        case .yaml:
            // One document per resource: the output applies again as it is.
            let documents = try resources.map { try YAMLOutput.render(json: JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])) }
            print(documents.joined(separator: "---\n"), terminator: "")
        case .table:
            // What each policy route matched lately, from the live traffic view.
            let matches = kind == .servicePolicy ? try await policyRouteMatches(client: client) : [:]
            var warnings: [String] = []
            let rows = resources.map { resource -> [String: Any] in
                let spec = resource["spec"] as? [String: Any] ?? [:]
                let name = (resource["metadata"] as? [String: Any])?["name"] as? String ?? ""
                var row: [String: Any] = [
                    "name": name, "service": spec["service"] ?? "",
                    "routes": (spec["routes"] as? [Any])?.count ?? 0, "default": spec["default"] ?? "",
                    "rules": (spec["rules"] as? [Any])?.count ?? 0,
                ]
                if let matched = matches[name] {
                    row["matched"] = matched.cell
                    warnings += matched.warnings(policy: name)
                }
                return row
            }
            let columns = switch kind {
            case .servicePolicy: [("NAME", "name"), ("SERVICE", "service"), ("ROUTES", "routes"), ("MATCHED (LAST 1 MIN)", "matched")]
            case .authorizationPolicy: [("NAME", "name"), ("SERVICE", "service"), ("DEFAULT", "default"), ("RULES", "rules")]
            }
            print(Table.render(rows: rows, columns: columns))
            for warning in warnings {
                print("warning: \(warning)")
            }
        }
    }

    /// The requests each route of a policy matched over the last minute, as its callers' sidecars counted them.
    private struct RouteMatches {
        var service: String
        /// Per route; nil: no sidecar calling the service reported yet.
        var routes: [UInt64?]
        var catchAll: UInt64?

        /// `routes[0]=12 routes[1]=0 other=80`, or `-` before any sidecar reported.
        var cell: String {
            guard routes.allSatisfy({ $0 != nil }), let catchAll else { return "-" }
            return (routes.enumerated().map { "routes[\($0)]=\($1 ?? 0)" } + ["other=\(catchAll)"])
                .joined(separator: " ")
        }

        /// A route that matched nothing while its service had other calls: most likely its match is wrong.
        func warnings(policy: String) -> [String] {
            // Saturating: the control plane's sums saturate too.
            let total = routes.reduce(catchAll ?? 0) { sum, matched in
                let (added, overflow) = sum.addingReportingOverflow(matched ?? 0)
                return overflow ? .max : added
            }
            guard total > 0 else { return [] }
            return routes.enumerated().compactMap { index, matched in
                matched == 0
                    ? "servicepolicy/\(policy) routes[\(index)] matched none of the \(total) calls to \(service) in the last minute; check its match (a gRPC service is named in full, e.g. package.Service)"
                    : nil
            }
        }
    }

    private func policyRouteMatches(client: ControlPlaneAPIClient) async throws -> [String: RouteMatches] {
        let traffic = try client.expectSuccess(try await client.send(.GET, "/api/v1/traffic"))
        var matches: [String: RouteMatches] = [:]
        for entry in traffic["policyRoutes"] as? [[String: Any]] ?? [] {
            guard let policy = entry["policy"] as? String else { continue }
            matches[policy] = RouteMatches(
                service: entry["service"] as? String ?? "",
                routes: (entry["routes"] as? [Any] ?? []).map { ($0 as? NSNumber)?.uint64Value },
                catchAll: (entry["catchAll"] as? NSNumber)?.uint64Value)
        }
        return matches
    }

    private func show(_ answer: ControlPlaneAPIClient.Answer, rows: [[String: Any]], columns: [(String, String)]) throws {
        switch output {
        case .json:
            print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        case .yaml:
            print(try YAMLOutput.render(json: JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])), terminator: "")
        case .table:
            print(Table.render(rows: rows, columns: columns))
        }
    }
}

/// `swiftmesh delete KIND NAME`.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a resource (a ServicePolicy or an AuthorizationPolicy) from the control plane.")

    @Argument(help: "The resource kind: policy or authorizationpolicy.")
    var kind: String

    @Argument(help: "The resource's name.")
    var name: String

    @OptionGroup var api: ControlPlaneAPIOptions

    func run() async throws {
        try await CLIFailure.reported {
            guard let resourceKind = MeshResource.Kind(word: kind) else {
                throw CLIFailure("delete \(kind): unknown kind; use \(MeshResource.Kind.allCases.map(\.plural).joined(separator: ", ")) (instances: swiftmesh deregister)")
            }
            let client = ControlPlaneAPIClient(options: api)
            _ = try client.expectSuccess(try await client.send(.DELETE, "/api/v1/resources/\(resourceKind.plural)/\(name)"))
            print("\(resourceKind.rawValue.lowercased())/\(name) deleted")
        }
    }
}

/// `swiftmesh register`: an instance outside the mesh (a database, a SaaS
/// endpoint), which sidecars then reach like any other.
struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register an external instance (outside the mesh) of a service; it stays until deregistered.")

    @Option(name: .long, help: "The service it belongs to.")
    var service: String

    @Option(name: .long, help: "Its IP address and port.")
    var address: HostPort

    @Option(name: .long, help: "What it speaks: http1 or http2.")
    var `protocol`: UpstreamProtocol = .http1

    @Option(name: .long, help: "A label, such as version=v1. Repeatable.")
    var label: [String] = []

    @OptionGroup var api: ControlPlaneAPIOptions

    func validate() throws {
        if let problem = ServiceNameSyntax.problem(service) {
            throw ValidationError("--service: \(problem)")
        }
        if let problem = InstanceSyntax.addressProblem(address.host) {
            throw ValidationError("--address: \(problem)")
        }
        _ = try labels()
    }

    /// The labels, by the rules a sidecar's `--label` follows.
    private func labels() throws -> [String: String] {
        do {
            return try SidecarSpec.labels(parsing: label)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() async throws {
        try await CLIFailure.reported {
            let body: [String: Any] = [
                "address": address.description, "protocol": `protocol`.rawValue, "labels": try labels(),
            ]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let client = ControlPlaneAPIClient(options: api)
            _ = try client.expectSuccess(try await client.send(.POST, "/api/v1/services/\(service)/instances", body: text))
            print("instance \(service)/\(address) registered")
        }
    }
}

/// `swiftmesh deregister`: removes one instance, external or not.
struct DeregisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deregister", abstract: "Remove an instance of a service from the registry.")

    @Option(name: .long, help: "The service it belongs to.")
    var service: String

    @Option(name: .long, help: "Its address and port, as registered.")
    var address: HostPort

    @OptionGroup var api: ControlPlaneAPIOptions

    func validate() throws {
        if let problem = ServiceNameSyntax.problem(service) {
            throw ValidationError("--service: \(problem)")
        }
    }

    func run() async throws {
        try await CLIFailure.reported {
            let client = ControlPlaneAPIClient(options: api)
            _ = try client.expectSuccess(try await client.send(.DELETE, "/api/v1/services/\(service)/instances/\(address)"))
            print("instance \(service)/\(address) deregistered")
        }
    }
}
