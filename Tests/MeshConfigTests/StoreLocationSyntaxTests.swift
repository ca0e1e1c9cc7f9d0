import MeshConfig
import Testing

@Suite("--store locations")
struct StoreLocationSyntaxTests {
    @Test func sqliteAndEtcdWithOneOrMoreMembers() throws {
        #expect(try StoreLocationSyntax.check("sqlite").get() == .sqlite)
        #expect(try StoreLocationSyntax.check("etcd://127.0.0.1:2379").get()
            == .etcd(endpoints: [HostPort(host: "127.0.0.1", port: 2379)], prefix: "/swiftmesh/"))
        #expect(try StoreLocationSyntax.check("etcd://etcd-0.etcd:2379,[::1]:2380/prod").get()
            == .etcd(endpoints: [HostPort(host: "etcd-0.etcd", port: 2379), HostPort(host: "::1", port: 2380)], prefix: "/prod/"))
        #expect(try StoreLocationSyntax.check("etcd://10.0.0.1:2379/a/b/").get()
            == .etcd(endpoints: [HostPort(host: "10.0.0.1", port: 2379)], prefix: "/a/b/"))
    }

    @Test func mistakesSayWhatIsExpected() {
        #expect(problem("postgres://db") == "\"postgres://db\" is neither sqlite nor etcd://HOST:PORT[,HOST:PORT...]")
        #expect(problem("etcd://") == "\"\" is not an etcd member's HOST:PORT, such as 127.0.0.1:2379; separate members with commas")
        #expect(problem("etcd://127.0.0.1:2379,,127.0.0.1:2380")?.hasPrefix("\"\" is not an etcd member's HOST:PORT") == true)
        #expect(problem("etcd://127.0.0.1")?.hasPrefix("\"127.0.0.1\" is not an etcd member's HOST:PORT") == true)
    }

    private func problem(_ text: String) -> String? {
        guard case .failure(let problem) = StoreLocationSyntax.check(text) else { return nil }
        return problem.description
    }
}
