import NIOCore

/// The addresses a name resolved to.
public struct DNSResolution: Sendable, Equatable {
    /// IPv4 and IPv6 literals, deduplicated and sorted: IPv4 before IPv6,
    /// each family in numeric order, so that an unchanged record set always
    /// compares equal and discovery can skip no-op updates.
    public var addresses: [String]
    /// The smallest TTL among the answers, in seconds; nil when there are none.
    public var ttl: UInt32?
    /// Families whose query failed while another answered, with the error:
    /// their addresses are missing from `addresses`, not known to be gone.
    public var failedFamilies: [DNSAddressFamily: DNSLookupError]

    public init(addresses: [String], ttl: UInt32?, failedFamilies: [DNSAddressFamily: DNSLookupError] = [:]) {
        self.addresses = addresses
        self.ttl = ttl
        self.failedFamilies = failedFamilies
    }

    /// Merges the answers to the A and AAAA queries for one name.
    init(merging answers: [DNSAnswer], failedFamilies: [DNSAddressFamily: DNSLookupError] = [:]) {
        self.failedFamilies = failedFamilies
        let packed = Set(answers.flatMap(\.addresses)).sorted { lhs, rhs in
            // 4-byte addresses first; within a family, bytes in network order sort numerically.
            lhs.count != rhs.count ? lhs.count < rhs.count : lhs.lexicographicallyPrecedes(rhs)
        }
        self.addresses = packed.compactMap(Self.text(ofPacked:))
        self.ttl = answers.compactMap(\.ttl).min()
    }

    /// The canonical text of a 4- or 16-byte address, by NIO's inet_ntop
    /// formatting (RFC 5952 for IPv6: lowercase, longest zero run as `::`).
    private static func text(ofPacked bytes: [UInt8]) -> String? {
        (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: 0))?.ipAddress
    }
}
