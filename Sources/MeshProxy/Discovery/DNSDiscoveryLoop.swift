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

    /// Runs until cancelled, calling `report` with every successful answer.
    func run(report: @Sendable ([DiscoveredEndpoint]) async -> Void) async {
        var previous: [String]?
        while !Task.isCancelled {
            do {
                let answer = try await resolver.resolve(name: settings.name)
                if answer.addresses != previous {
                    logger.info("dns discovery", metadata: [
                        "cluster": "\(cluster)", "name": "\(settings.name)", "addresses": "\(answer.addresses)",
                    ])
                    previous = answer.addresses
                }
                await report(EndpointResolution.endpoints(ips: answer.addresses, port: settings.port))
            } catch {
                logger.warning("dns lookup failed; keeping the previous endpoints", metadata: [
                    "cluster": "\(cluster)", "name": "\(settings.name)", "error": "\(error)",
                ])
            }
            try? await Task.sleep(nanoseconds: UInt64(settings.refresh.nanoseconds))
        }
    }
}
