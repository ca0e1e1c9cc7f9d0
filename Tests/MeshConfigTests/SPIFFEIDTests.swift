import MeshConfig
import Testing

@Suite("SPIFFE IDs")
struct SPIFFEIDTests {
    @Test func aServiceIdentityIsBuiltAndReadBack() {
        let identity = SPIFFEID.service("user", trustDomain: "swiftmesh.local")
        #expect(identity == "spiffe://swiftmesh.local/service/user")
        #expect(SPIFFEID.parse(identity)! == ("swiftmesh.local", "user"))
    }

    @Test(arguments: ["https://swiftmesh.local/service/user", "spiffe://swiftmesh.local/ns/user", "spiffe:///service/user",
                      "spiffe://swiftmesh.local/service/", "spiffe://swiftmesh.local/service/user/extra"])
    func otherNamesAreNotMeshIdentities(name: String) {
        #expect(SPIFFEID.parse(name) == nil)
    }

    @Test func trustDomainsAreChecked() {
        #expect(TrustDomainSyntax.problem("swiftmesh.local") == nil)
        #expect(TrustDomainSyntax.problem("Mesh.Local") != nil)
        #expect(TrustDomainSyntax.problem("") != nil)
    }
}
