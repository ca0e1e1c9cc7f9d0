/// What makes one sidecar: the instance it fronts and registers, the
/// services its app calls, and where it listens. One set of rules for all
/// that write or read one: the `swiftmesh sidecar` command (whose arguments
/// these are), the Kubernetes injector (which writes those arguments for a
/// pod), `swiftmesh register` (labels) and the control plane (which checks a
/// sidecar's Hello with the same `InstanceSyntax`), so they cannot drift apart.
public struct SidecarSpec: Sendable, Equatable {
    /// One service the app calls, and the local address it calls it at.
    public struct Upstream: Sendable, Equatable {
        public var service: String
        /// The outbound listener's address: the app calls this to reach `service`.
        public var listen: HostPort

        public init(service: String, listen: HostPort) {
            self.service = service
            self.listen = listen
        }
    }

    /// The service this instance belongs to (`--service`).
    public var service: String
    /// Where the app listens; inbound requests go there (`--app`).
    public var app: HostPort
    /// The protocol the app speaks; nil: the sidecar finds out (`--app-protocol auto`).
    public var appProtocol: UpstreamProtocol?
    /// Where other sidecars send this instance's requests (`--inbound`).
    public var inbound: HostPort
    /// The address registered for this instance (`--advertise`): `inbound`
    /// unless that is a wildcard such as 0.0.0.0, which other sidecars cannot reach.
    public var advertise: HostPort
    /// `--upstream NAME=HOST:PORT`, in the order given.
    public var upstreams: [Upstream]
    /// The admin listener (`/ready`, `/metrics`, ...); none when nil (`--admin`).
    public var admin: HostPort?
    /// Such as version=v1 and zone=a; registered with the instance (`--label`).
    public var labels: [String: String]

    public init(
        service: String, app: HostPort, appProtocol: UpstreamProtocol? = nil, inbound: HostPort,
        advertise: HostPort? = nil, upstreams: [Upstream] = [], admin: HostPort? = nil, labels: [String: String] = [:]
    ) {
        self.service = service
        self.app = app
        self.appProtocol = appProtocol
        self.inbound = inbound
        self.advertise = advertise ?? inbound
        self.upstreams = upstreams
        self.admin = admin
        self.labels = labels
    }

    /// A rule one argument breaks: the argument, what is wrong and the fix.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// `--upstream`, `--label`, ...
        public var argument: String
        /// The value as given, when the problem is about one of several (an upstream, a label).
        public var value: String?
        public var message: String

        public var description: String {
            "\(argument)\(value.map { " \($0)" } ?? ""): \(message)"
        }
    }

    // MARK: Parsing arguments

    /// `NAME=HOST:PORT`, the service's name valid and the address one to listen on.
    public static func upstream(parsing text: String) throws(Problem) -> Upstream {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let listen = HostPortSyntax.parse(parts[1]) else {
            let detail = parts.count == 2 ? " (\(HostPortSyntax.problem(parts[1]) ?? "not an address"))" : ""
            throw Problem(
                argument: "--upstream", value: text,
                message: "expected NAME=HOST:PORT, such as alive=127.0.0.1:9002\(detail)")
        }
        if let problem = ServiceNameSyntax.problem(parts[0]) {
            throw Problem(argument: "--upstream", value: text, message: problem)
        }
        return Upstream(service: parts[0], listen: listen)
    }

    /// `KEY=VALUE` labels, each key named once.
    public static func labels(parsing texts: [String]) throws(Problem) -> [String: String] {
        var labels: [String: String] = [:]
        for text in texts {
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw Problem(argument: "--label", value: text, message: "expected KEY=VALUE, such as version=v1")
            }
            guard labels[parts[0]] == nil else {
                throw Problem(argument: "--label", value: text, message: "\(parts[0]) is named twice; name each label once")
            }
            labels[parts[0]] = parts[1]
        }
        return labels
    }

    // MARK: Rules

    /// The first rule the spec breaks, or nil: a valid service name; listen
    /// addresses that are IP literals and bind apart from each other and from
    /// the app's; an advertised address other sidecars can reach; each
    /// upstream service named once.
    public var problem: Problem? {
        if let problem = ServiceNameSyntax.problem(service) {
            return Problem(argument: "--service", message: problem)
        }
        var listens: [(argument: String, value: String?, address: HostPort)] = [("--inbound", nil, inbound)]
        listens += upstreams.map { ("--upstream", "\($0.service)=\($0.listen)", $0.listen) }
        if let admin {
            listens.append(("--admin", nil, admin))
        }
        for listen in listens where !HostPortSyntax.isIPLiteral(listen.address.host) {
            return Problem(
                argument: listen.argument, value: listen.value,
                message: "\"\(listen.address.host)\" is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0")
        }
        if let problem = InstanceSyntax.addressProblem(advertise.host) {
            return advertise == inbound
                ? Problem(
                    argument: "--inbound",
                    message: "\(inbound) is not an address other sidecars can reach; add --advertise with this instance's IP and port")
                : Problem(argument: "--advertise", message: problem)
        }
        var named: Set<String> = []
        for upstream in upstreams where !named.insert(upstream.service).inserted {
            return Problem(
                argument: "--upstream", value: "\(upstream.service)=\(upstream.listen)",
                message: "\(upstream.service) is named twice; give each service one local address")
        }
        for (index, listen) in listens.enumerated() {
            let named = listen.value.map { "\(listen.argument) \($0)" } ?? listen.argument
            if let earlier = listens[..<index].first(where: { $0.address.bindsOverlapping(listen.address) }) {
                let earlierNamed = earlier.value.map { "\(earlier.argument) \($0)" } ?? earlier.argument
                return Problem(
                    argument: listen.argument, value: listen.value,
                    message: "\(listen.address) is also where \(earlierNamed) listens; give each its own port")
            }
            guard app.bindsOverlapping(listen.address) else { continue }
            // An upstream's port is the one to move; the sidecar's own listeners stay put.
            return listen.value == nil
                ? Problem(
                    argument: "--app",
                    message: "\(app) is where the sidecar itself listens (\(named)); the app needs a port of its own")
                : Problem(
                    argument: listen.argument, value: listen.value,
                    message: "\(listen.address) is where the app listens (--app); give the upstream another port")
        }
        return nil
    }

    /// The spec as `swiftmesh sidecar` arguments (what the injector writes);
    /// the command parses them back to the same spec.
    public var arguments: [String] {
        var arguments = [
            "--service", service, "--app", app.description, "--app-protocol", appProtocol?.rawValue ?? "auto",
            "--inbound", inbound.description,
        ]
        if advertise != inbound {
            arguments += ["--advertise", advertise.description]
        }
        if let admin {
            arguments += ["--admin", admin.description]
        }
        for upstream in upstreams {
            arguments += ["--upstream", "\(upstream.service)=\(upstream.listen)"]
        }
        for key in labels.keys.sorted() {
            arguments += ["--label", "\(key)=\(labels[key] ?? "")"]
        }
        return arguments
    }
}
