import Foundation
import NIOCore
import Testing

@testable import MeshDNS

@Suite("System resolver address")
struct SystemResolverTests {
    @Test func firstUsableNameserverWins() throws {
        let conf = """
            # generated
            search default.svc.cluster.local
            ; nameserver 192.0.2.1
            nameserver not-an-address
            nameserver   10.96.0.10   # kube-dns
            nameserver 10.96.0.11
            options ndots:5
            """
        let address = DNSResolver.firstNameserver(inResolvConf: conf)
        #expect(address == (try SocketAddress(ipAddress: "10.96.0.10", port: 53)))
    }

    @Test func ipv6Nameservers() throws {
        let loopback = try SocketAddress(ipAddress: "::1", port: 53)
        #expect(DNSResolver.firstNameserver(inResolvConf: "nameserver ::1\n") == loopback)
        let linkLocal = DNSResolver.firstNameserver(inResolvConf: "nameserver fe80::1%lo\n")
        #expect(linkLocal?.ipAddress == "fe80::1")
    }

    @Test func readsTheGivenFile() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshdns-resolv-\(UUID().uuidString).conf").path
        try "nameserver 127.0.0.53\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = try SocketAddress(ipAddress: "127.0.0.53", port: 53)
        #expect(DNSResolver.systemResolverAddress(resolvConfPath: path) == expected)
    }

    @Test func fallsBackToLoopback() throws {
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 53)
        #expect(DNSResolver.systemResolverAddress(resolvConfPath: "/nonexistent/resolv.conf") == loopback)
        #expect(DNSResolver.firstNameserver(inResolvConf: "search example\n") == nil)
    }
}
