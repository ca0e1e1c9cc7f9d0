import MeshDNS
import NIOCore
import NIOPosix
import Testing

/// The resolver's behavior on the wire: retry, stray datagrams, failures,
/// silence and cancellation, against a scripted loopback server.
@Suite("DNS resolver transport")
struct DNSResolverTests {
    let v4: [UInt8] = [10, 1, 2, 3]
    let v6: [UInt8] = [0xfd, 0] + Array(repeating: 0, count: 13) + [7]

    func resolver(_ server: SocketAddress) -> DNSResolver {
        DNSResolver(server: server, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    }

    @Test func retriesOnceWhenTheFirstQueryIsLost() async throws {
        let (v4, v6) = (self.v4, self.v6)
        try await ScriptedDNSServer.with({ query, attempt in
            attempt == 1 ? [] : [reply(to: query, addresses: [v4, v6])]
        }) { server in
            let resolution = try await resolver(server).resolve(name: "svc.test", timeout: .seconds(2))
            #expect(resolution == DNSResolution(addresses: ["10.1.2.3", "fd00::7"], ttl: 60))
        }
    }

    @Test func straysWithOtherIDsAreIgnored() async throws {
        let v4 = self.v4
        try await ScriptedDNSServer.with({ query, _ in
            let id = parts(of: query).id
            return [[0xFF], reply(to: query, id: id &+ 1, addresses: [[6, 6, 6, 6]]), reply(to: query, addresses: [v4])]
        }) { server in
            let resolution = try await resolver(server).resolve(name: "svc.test")
            #expect(resolution.addresses == ["10.1.2.3"])
        }
    }

    /// Many resolvers refuse or fail AAAA for a name they hold only IPv4
    /// addresses of: the A answer stands, and the failure is reported.
    @Test func aFamilyThatFailsIsLeftOutAndNamed() async throws {
        let v4 = self.v4
        for rcode: UInt16 in [2, 5] {
            try await ScriptedDNSServer.with({ query, _ in
                parts(of: query).type == 28 ? [reply(to: query, rcode: rcode)] : [reply(to: query, addresses: [v4])]
            }) { server in
                let resolution = try await resolver(server).resolve(name: "svc.test")
                #expect(resolution.addresses == ["10.1.2.3"])
                #expect(resolution.failedFamilies == [.v6: .serverFailure(rcode: Int(rcode))])
            }
        }
    }

    @Test func theLookupFailsWhenEveryFamilyFailed() async throws {
        try await ScriptedDNSServer.with({ query, _ in
            [reply(to: query, rcode: parts(of: query).type == 28 ? 5 : 2)]
        }) { server in
            await #expect(throws: DNSLookupError.serverFailure(rcode: 2)) {
                try await resolver(server).resolve(name: "svc.test")
            }
        }
    }

    @Test func onlyTheFamiliesAskedForAreAsked() async throws {
        let v6 = self.v6
        try await ScriptedDNSServer.with({ query, _ in
            parts(of: query).type == 28 ? [reply(to: query, addresses: [v6])] : [reply(to: query, rcode: 5)]
        }) { server in
            let resolution = try await resolver(server).resolve(name: "svc.test", families: [.v6])
            #expect(resolution == DNSResolution(addresses: ["fd00::7"], ttl: 60))
            await #expect(throws: DNSLookupError.serverFailure(rcode: 5)) {
                try await resolver(server).resolve(name: "svc.test", families: [.v4])
            }
        }
    }

    @Test func nothingListeningTimesOutWithinTheBound() async throws {
        let port = try await freeLoopbackUDPPort()
        let server = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let start = ContinuousClock.now
        await #expect(throws: DNSLookupError.timeout(server: "127.0.0.1:\(port)")) {
            try await resolver(server).resolve(name: "svc.test", timeout: .milliseconds(400))
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(400))
        #expect(elapsed < .seconds(2))
    }

    @Test func cancellationEndsTheLookupPromptly() async throws {
        try await ScriptedDNSServer.with({ _, _ in [] }) { server in
            let lookup = Task { try await resolver(server).resolve(name: "svc.test", timeout: .seconds(30)) }
            // Cancelling before or after the query is sent must both end the lookup.
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            lookup.cancel()
            await #expect(throws: CancellationError.self) { try await lookup.value }
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test func invalidNameIsRejectedBeforeAsking() async throws {
        let server = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        await #expect(throws: DNSLookupError.self) {
            try await resolver(server).resolve(name: "a..test")
        }
    }
}
