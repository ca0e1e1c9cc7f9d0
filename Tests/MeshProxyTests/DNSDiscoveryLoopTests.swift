import MeshDNS
import Testing

@testable import MeshProxy

@Suite struct DNSDiscoveryLoopTests {
    /// A family whose query failed this once keeps the endpoints it had; IPv4 stays first.
    @Test func aFailedFamilyKeepsItsPreviousAddresses() {
        let previous = ["10.0.0.1", "10.0.0.2", "fd00::1"]
        #expect(DNSDiscoveryLoop.addresses(["10.0.0.3"], failed: [.v6], previous: previous)
            == ["10.0.0.3", "fd00::1"])
        #expect(DNSDiscoveryLoop.addresses(["fd00::2"], failed: [.v4], previous: previous)
            == ["10.0.0.1", "10.0.0.2", "fd00::2"])
        #expect(DNSDiscoveryLoop.addresses(["10.0.0.3"], failed: [], previous: previous) == ["10.0.0.3"])
        // Never answered before: the family simply has no endpoints yet.
        #expect(DNSDiscoveryLoop.addresses(["10.0.0.3"], failed: [.v6], previous: []) == ["10.0.0.3"])
    }
}
