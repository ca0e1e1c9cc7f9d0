import Logging
import MeshConfig
import MeshDNS
import NIOCore

/// Resolves a DNS cluster's name every `refresh` and reports each answer.
/// A failed lookup keeps the previous endpoints: a DNS outage must not empty
/// a cluster that was serving.
struct DNSDiscoveryLoop: Sendable {
    let cluster: String
    let settings: DNSDiscovery
    let resolver: DNSResolver
    let logger: Logger

    init(cluster: String, settings: DNSDiscovery, group: EventLoopGroup, logger: Logger) {
        self.cluster = cluster
        self.settings = settings
        let server: SocketAddress
        if let configured = settings.resolver,
           let address = try? SocketAddress(ipAddress: configured.host, port: configured.port) {
            server = address
        } else {
            server = DNSResolver.systemResolverAddress()
        }
        resolver = DNSResolver(server: server, eventLoopGroup: group)
        self.logger = logger
    }

    /// The families `settings.family` asks for.
    var families: [DNSAddressFamily] {
        switch settings.family {
        case .auto: DNSAddressFamily.allCases
        case .v4: [.v4]
        case .v6: [.v6]
        }
    }

    /// Runs until cancelled, calling `report` with every successful answer.
    func run(report: @Sendable ([DiscoveredEndpoint]) async -> Void) async {
        var previous: [String]?
        var previouslyFailed: Set<DNSAddressFamily> = []
        while !Task.isCancelled {
            do {
                let answer = try await resolver.resolve(name: settings.name, families: families)
                let failed = Set(answer.failedFamilies.keys)
                if failed != previouslyFailed {
                    // Logged when it changes: a resolver that always refuses AAAA would otherwise log every refresh.
                    for (family, error) in answer.failedFamilies where !previouslyFailed.contains(family) {
                        logger.warning("dns lookup of one address family failed; using the others", metadata: [
                            "cluster": "\(cluster)", "name": "\(settings.name)", "family": "\(family.rawValue)",
                            "error": "\(error)",
                        ])
                    }
                    previouslyFailed = failed
                }
                let addresses = Self.addresses(answer.addresses, failed: failed, previous: previous ?? [])
                if addresses != previous {
                    logger.info("dns discovery", metadata: [
                        "cluster": "\(cluster)", "name": "\(settings.name)", "addresses": "\(addresses)",
                    ])
                    previous = addresses
                }
                await report(EndpointResolution.endpoints(ips: addresses, port: settings.port))
            } catch {
                logger.warning("dns lookup failed; keeping the previous endpoints", metadata: [
                    "cluster": "\(cluster)", "name": "\(settings.name)", "error": "\(error)",
                ])
            }
            try? await Task.sleep(nanoseconds: UInt64(settings.refresh.nanoseconds))
        }
    }

    /// The answer's addresses, with a failed family's taken from the
    /// previous answer: a family whose query failed this once keeps its
    /// endpoints, as a whole lookup that fails does. IPv4 stays first.
    static func addresses(_ answered: [String], failed: Set<DNSAddressFamily>, previous: [String]) -> [String] {
        guard !failed.isEmpty else { return answered }
        return DNSAddressFamily.allCases.flatMap { family in
            (failed.contains(family) ? previous : answered).filter { DNSAddressFamily(ofAddress: $0) == family }
        }
    }
}
