import MeshDNS
import NIOCore
import NIOPosix
import Testing

/// Lookups against a real dnsmasq, the way the proxy asks a cluster's DNS for
/// a headless service with one record per pod.
///
/// Serialized: Foundation's Process notices a child's exit when a socket the
/// child inherited closes, and dnsmasq closes every inherited descriptor at
/// startup, so Foundation's one monitor thread then waits in waitpid for that
/// dnsmasq until it exits. One dnsmasq at a time keeps that wait from holding
/// up the exit of another.
@Suite("Resolving against dnsmasq", .serialized)
struct DnsmasqIntegrationTests {
    static let hosts = """
        127.0.0.2 svc.test
        127.0.0.3 svc.test
        ::1 svc.test
        127.0.0.9 other.test
        """

    /// Runs `body` against a fresh dnsmasq, stopping it on every path.
    func withDnsmasq(_ body: (DNSResolver) async throws -> Void) async throws {
        let server = try await DnsmasqServer.start(hosts: Self.hosts, readinessName: "other.test")
        do {
            try await body(DNSResolver(server: server.address, eventLoopGroup: MultiThreadedEventLoopGroup.singleton))
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test func allAddressesOfTheNameComeBack() async throws {
        try await withDnsmasq { resolver in
            let resolution = try await resolver.resolve(name: "svc.test")
            #expect(resolution == DNSResolution(addresses: ["127.0.0.2", "127.0.0.3", "::1"], ttl: 30))
            #expect(try await resolver.resolve(name: "SVC.test.") == resolution)
        }
    }

    @Test func unknownNameHasNoAddresses() async throws {
        try await withDnsmasq { resolver in
            let resolution = try await resolver.resolve(name: "missing.test")
            #expect(resolution == DNSResolution(addresses: [], ttl: nil))
        }
    }

    @Test func onlyIPv4MeansNoIPv6Addresses() async throws {
        try await withDnsmasq { resolver in
            let resolution = try await resolver.resolve(name: "other.test")
            #expect(resolution.addresses == ["127.0.0.9"])
        }
    }
}
