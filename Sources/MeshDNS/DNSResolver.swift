import NIOCore

/// An asynchronous DNS client for A and AAAA lookups over UDP to one resolver.
///
/// Used by DNS discovery, where a Kubernetes headless service answers one
/// record per ready pod. Not for the request path: each lookup opens its
/// own sockets.
public struct DNSResolver: Sendable {
    /// The resolver asked, e.g. a cluster DNS service or a local dnsmasq.
    public let server: SocketAddress
    private let eventLoopGroup: any EventLoopGroup

    /// - Parameters:
    ///   - server: the resolver to ask; any port, so tests can run their own.
    ///   - eventLoopGroup: a NIOPosix group (sockets are opened with `DatagramBootstrap`).
    public init(server: SocketAddress, eventLoopGroup: any EventLoopGroup) {
        self.server = server
        self.eventLoopGroup = eventLoopGroup
    }

    /// Asks A and AAAA concurrently; NXDOMAIN and empty answers mean zero addresses (not an error);
    /// SERVFAIL/REFUSED etc. throw serverFailure; no answer within `timeout` throws timeout
    /// (the query is retried once within that time before giving up).
    ///
    /// The first failure of either query fails the lookup and cancels the other:
    /// half an answer would look like endpoints going away.
    public func resolve(name: String, timeout: TimeAmount = .seconds(2)) async throws -> DNSResolution {
        let name = try DNSName(validating: name)
        let answers = try await withThrowingTaskGroup(of: DNSAnswer.self) { group in
            for type in [DNSRecordType.a, .aaaa] {
                let query = DNSQuery(question: DNSQuestion(name: name, type: type))
                group.addTask { [server, eventLoopGroup] in
                    try await DNSUDPTransport.exchange(query, with: server, timeout: timeout, on: eventLoopGroup)
                }
            }
            var answers: [DNSAnswer] = []
            for try await answer in group {
                answers.append(answer)
            }
            return answers
        }
        return DNSResolution(merging: answers)
    }
}
