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

    /// Asks for the addresses of `families` (A for v4, AAAA for v6)
    /// concurrently. NXDOMAIN and empty answers mean zero addresses (not an
    /// error). A family whose query fails (SERVFAIL, REFUSED, no answer
    /// within `timeout`, after one retry) is left out and named in the
    /// resolution's `failedFamilies`: many resolvers refuse or fail AAAA for
    /// a name they hold only IPv4 addresses of, and the other family's
    /// answer still stands. Only when every family failed does the lookup
    /// throw (the first family's error).
    public func resolve(
        name: String, families: [DNSAddressFamily] = DNSAddressFamily.allCases, timeout: TimeAmount = .seconds(2)
    ) async throws -> DNSResolution {
        let name = try DNSName(validating: name)
        let outcomes = try await withThrowingTaskGroup(
            of: (DNSAddressFamily, Result<DNSAnswer, DNSLookupError>).self
        ) { group in
            for family in families {
                let query = DNSQuery(question: DNSQuestion(name: name, type: family.recordType))
                group.addTask { [server, eventLoopGroup] in
                    do {
                        let answer = try await DNSUDPTransport.exchange(
                            query, with: server, timeout: timeout, on: eventLoopGroup)
                        return (family, .success(answer))
                    } catch let error as DNSLookupError {
                        return (family, .failure(error))
                    }
                }
            }
            var outcomes: [DNSAddressFamily: Result<DNSAnswer, DNSLookupError>] = [:]
            for try await (family, outcome) in group {
                outcomes[family] = outcome
            }
            return outcomes
        }
        var answers: [DNSAnswer] = []
        var failed: [DNSAddressFamily: DNSLookupError] = [:]
        for family in families {
            switch outcomes[family] {
            case .success(let answer)?: answers.append(answer)
            case .failure(let error)?: failed[family] = error
            case nil: break
            }
        }
        if answers.isEmpty, let first = families.lazy.compactMap({ failed[$0] }).first {
            throw first
        }
        return DNSResolution(merging: answers, failedFamilies: failed)
    }
}

/// An address family, and the record type that holds its addresses.
public enum DNSAddressFamily: String, Sendable, Hashable, CaseIterable {
    case v4
    case v6

    var recordType: DNSRecordType {
        switch self {
        case .v4: .a
        case .v6: .aaaa
        }
    }

    /// The family of an address literal.
    public init(ofAddress literal: String) {
        self = literal.contains(":") ? .v6 : .v4
    }
}
