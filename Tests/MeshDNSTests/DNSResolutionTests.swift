import Testing

@testable import MeshDNS

@Suite("Merging A and AAAA answers")
struct DNSResolutionTests {
    @Test func deduplicatesAndSortsIPv4FirstNumerically() {
        let v4 = DNSAnswer(addresses: [[127, 0, 0, 10], [127, 0, 0, 2], [127, 0, 0, 10]], ttl: 30)
        let v6 = DNSAnswer(addresses: [Array(repeating: 0, count: 15) + [1]], ttl: 5)
        let resolution = DNSResolution(merging: [v6, v4])
        #expect(resolution == DNSResolution(addresses: ["127.0.0.2", "127.0.0.10", "::1"], ttl: 5))
    }

    @Test func formatsIPv6Canonically() {
        let bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0, 0x01]
        #expect(DNSResolution(merging: [DNSAnswer(addresses: [bytes], ttl: 1)]).addresses == ["2001:db8::a:1"])
    }

    @Test func noAnswersMeansNoTTL() {
        let empty = DNSAnswer(addresses: [], ttl: nil)
        #expect(DNSResolution(merging: [empty, empty]) == DNSResolution(addresses: [], ttl: nil))
    }
}
