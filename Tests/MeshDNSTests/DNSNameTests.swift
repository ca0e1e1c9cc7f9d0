import Testing

@testable import MeshDNS

@Suite("DNS names")
struct DNSNameTests {
    @Test func trailingDotIsOptionalAndCaseIsFolded() throws {
        let plain = try DNSName(validating: "Svc.Default.svc.cluster.local")
        let dotted = try DNSName(validating: "svc.default.SVC.cluster.local.")
        #expect(plain == dotted)
        #expect(plain.description == "svc.default.svc.cluster.local")
        #expect(plain.wireBytes == name("svc", "default", "svc", "cluster", "local"))
    }

    @Test func longestLabelAndNameAreAccepted() throws {
        let label63 = String(repeating: "a", count: 63)
        _ = try DNSName(validating: label63 + ".test")
        // 3 labels of 63 plus one of 61, with dots: 63*3 + 61 + 3 = 253 characters.
        let name253 = [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(name253.utf8.count == 253)
        _ = try DNSName(validating: name253)
        _ = try DNSName(validating: name253 + ".")
    }

    @Test(arguments: [
        "",
        ".",
        "a..b",
        ".a",
        String(repeating: "a", count: 64) + ".test",
        Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."),
        "has space.test",
        "caf\u{E9}.test",
    ])
    func invalidNamesAreRejected(text: String) {
        #expect {
            try DNSName(validating: text)
        } throws: { error in
            guard case .invalidName = error as? DNSLookupError else { return false }
            return true
        }
    }
}
