import MeshConfig
import Testing

@Suite("SidecarSpec: one set of rules for a sidecar's arguments")
struct SidecarSpecTests {
    private let valid = SidecarSpec(
        service: "web", app: HostPort(host: "127.0.0.1", port: 8080), appProtocol: .http1,
        inbound: HostPort(host: "0.0.0.0", port: 15006), advertise: HostPort(host: "10.0.0.7", port: 15006),
        upstreams: [.init(service: "user", listen: HostPort(host: "127.0.0.1", port: 7001))],
        admin: HostPort(host: "10.0.0.7", port: 15000), labels: ["version": "v2", "zone": "a"])

    /// What the command would read from `arguments`, by the same parsers.
    private func reparsed(_ arguments: [String]) throws -> SidecarSpec {
        var values: [String: [String]] = [:]
        for index in stride(from: 0, to: arguments.count, by: 2) {
            values[arguments[index], default: []].append(arguments[index + 1])
        }
        func address(_ flag: String) throws -> HostPort? {
            try values[flag]?.first.map { try #require(HostPortSyntax.parse($0)) }
        }
        return SidecarSpec(
            service: try #require(values["--service"]?.first), app: try #require(try address("--app")),
            appProtocol: values["--app-protocol"]?.first.flatMap(UpstreamProtocol.init(rawValue:)),
            inbound: try #require(try address("--inbound")), advertise: try address("--advertise"),
            upstreams: try (values["--upstream"] ?? []).map(SidecarSpec.upstream(parsing:)),
            admin: try address("--admin"), labels: try SidecarSpec.labels(parsing: values["--label"] ?? []))
    }

    @Test func argumentsReadBackToTheSameSpec() throws {
        #expect(valid.problem == nil)
        #expect(valid.arguments == [
            "--service", "web", "--app", "127.0.0.1:8080", "--app-protocol", "http1", "--inbound", "0.0.0.0:15006",
            "--advertise", "10.0.0.7:15006", "--admin", "10.0.0.7:15000", "--upstream", "user=127.0.0.1:7001",
            "--label", "version=v2", "--label", "zone=a",
        ])
        #expect(try reparsed(valid.arguments) == valid)
        let plain = SidecarSpec(service: "web", app: valid.app, inbound: HostPort(host: "127.0.0.1", port: 15001))
        #expect(try reparsed(plain.arguments) == plain, "no --advertise when it is --inbound; auto protocol")
    }

    @Test func upstreamsAndLabelsParseOrSayWhy() throws {
        #expect(try SidecarSpec.upstream(parsing: "alive=127.0.0.1:9002")
            == .init(service: "alive", listen: HostPort(host: "127.0.0.1", port: 9002)))
        #expect(throws: SidecarSpec.Problem.self) { try SidecarSpec.upstream(parsing: "alive") }
        #expect(throws: SidecarSpec.Problem.self) { try SidecarSpec.upstream(parsing: "Alive_1=127.0.0.1:9002") }
        #expect(try SidecarSpec.labels(parsing: ["version=v1", "empty="]) == ["version": "v1", "empty": ""])
        do {
            _ = try SidecarSpec.labels(parsing: ["zone=a", "zone=b"])
            Issue.record("a label named twice was taken")
        } catch {
            #expect(error.description == "--label zone=b: zone is named twice; name each label once")
        }
        #expect(throws: SidecarSpec.Problem.self) { try SidecarSpec.labels(parsing: ["=v1"]) }
    }

    @Test func eachRuleNamesItsArgument() {
        func problem(_ change: (inout SidecarSpec) -> Void) -> String? {
            var spec = valid
            change(&spec)
            return spec.problem?.description
        }
        #expect(problem { $0.service = "Web_1" }?.hasPrefix("--service: ") == true)
        #expect(problem { $0.admin = HostPort(host: "localhost", port: 15000) }
            == "--admin: \"localhost\" is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0")
        #expect(problem { $0.advertise = $0.inbound }
            == "--inbound: 0.0.0.0:15006 is not an address other sidecars can reach; add --advertise with this instance's IP and port")
        #expect(problem { $0.advertise = HostPort(host: "::", port: 15006) }?.hasPrefix("--advertise: \"::\" is not an address other sidecars can reach") == true)
        #expect(problem { $0.upstreams.append(.init(service: "user", listen: HostPort(host: "127.0.0.1", port: 7002))) }
            == "--upstream user=127.0.0.1:7002: user is named twice; give each service one local address")
        #expect(problem { $0.upstreams[0].listen = HostPort(host: "127.0.0.1", port: 15006) }
            == "--upstream user=127.0.0.1:15006: 127.0.0.1:15006 is also where --inbound listens; give each its own port")
        #expect(problem { $0.upstreams[0].listen = HostPort(host: "127.0.0.1", port: 8080) }
            == "--upstream user=127.0.0.1:8080: 127.0.0.1:8080 is where the app listens (--app); give the upstream another port")
        #expect(problem { $0.app = HostPort(host: "127.0.0.1", port: 15000) } == nil, "the admin listens on 10.0.0.7 only")
        #expect(problem { $0.app = HostPort(host: "127.0.0.1", port: 15006) }
            == "--app: 127.0.0.1:15006 is where the sidecar itself listens (--inbound); the app needs a port of its own")
    }
}
