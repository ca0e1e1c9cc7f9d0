import Testing
@testable import MeshConfig

@Suite("Address syntax")
struct HostPortSyntaxTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:1", "0.0.0.0", 1),
        ("[::1]:8080", "::1", 8080),
        ("[::]:65535", "::", 65535),
        ("[2001:db8::1]:443", "2001:db8::1", 443),
        ("[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80),
        ("user.default.svc.cluster.local:50051", "user.default.svc.cluster.local", 50051),
        ("localhost:80", "localhost", 80),
    ])
    func parses(text: String, host: String, port: Int) {
        #expect(HostPortSyntax.parse(text) == HostPort(host: host, port: port))
    }

    @Test(arguments: [
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:8o",
        "::1:8080", "[::1]", "[::1]8080", "[127.0.0.1]:80", "[::1:80", ":8080", "*:8080",
        "10.0.0.256:80", "my host:80", "-bad.example:80", "",
    ])
    func rejects(text: String) {
        #expect(HostPortSyntax.parse(text) == nil)
    }

    @Test(arguments: ["127.0.0.1:8080", "[::1]:8080", "[2001:db8::1]:443", "user.svc:50051"])
    func descriptionReadsBack(text: String) throws {
        let address = try #require(HostPortSyntax.parse(text))
        #expect(address.description == text)
        #expect(HostPortSyntax.parse(address.description) == address)
    }

    @Test(arguments: [
        ("127.0.0.1", true), ("0.0.0.0", true), ("255.255.255.255", true),
        ("::1", true), ("::", true), ("1::", true), ("fe80::1:2", true),
        ("1:2:3:4:5:6:7:8", true), ("1:2:3:4:5:6:1.2.3.4", true), ("::ffff:1.2.3.4", true),
        ("256.0.0.1", false), ("01.2.3.4", false), ("1.2.3", false), ("1.2.3.4.5", false),
        ("1:2:3:4:5:6:7:8:9", false), ("1::2::3", false), (":::", false), ("1:2:3:4:5:6:7::8", false),
        ("12345::", false), ("fe80::1%eth0", false), ("[::1]", false), ("localhost", false), ("", false),
    ])
    func recognisesIPLiterals(host: String, isLiteral: Bool) {
        #expect(HostPortSyntax.isIPLiteral(host) == isLiteral)
    }

    @Test func explainsWhatIsWrong() {
        #expect(HostPortSyntax.check("::1:80") == .failure(.unbracketedIPv6))
        #expect(HostPortSyntax.check("10.0.0.1") == .failure(.missingPort))
        #expect(HostPortSyntax.check("10.0.0.1:99999") == .failure(.portOutOfRange(99999)))
        #expect(HostPortSyntax.check("10.0.0.1:http") == .failure(.invalidPort("http")))
        #expect(HostPortSyntax.check(":80") == .failure(.emptyHost))
        #expect(HostPortSyntax.check("a..b:80") == .failure(.invalidHost("a..b")))
    }
}
