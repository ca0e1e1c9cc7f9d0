import FuzzSupport
import MeshConfig

// The mesh resource decoder (`swiftmesh apply -f`: YAML documents of
// ServicePolicy and AuthorizationPolicy), on any text. Invariants:
// - a document is either resources or issues, each with a message;
// - a resource's spec as the control plane stores it (canonical JSON)
//   decodes back to the same spec.

@_cdecl("FuzzResources_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        let resources: [MeshResource]
        do throws(ConfigErrors) {
            resources = try ResourceLoader.decode(yaml: text)
        } catch {
            require(!error.issues.isEmpty && error.issues.allSatisfy { !$0.message.isEmpty },
                    "a refusal without a reason: \(error.issues)")
            return
        }
        for resource in resources {
            switch resource.spec {
            case .servicePolicy(let policy):
                let stored = ServicePolicyJSON.render(policy)
                let again = try? ResourceLoader.decodePolicy(json: stored)
                require(again == policy, "the stored ServicePolicy reads back as another:\n\(stored)")
            case .authorizationPolicy(let policy):
                let stored = AuthorizationPolicyJSON.render(policy)
                let again = try? ResourceLoader.decodeAuthorizationPolicy(json: stored)
                require(again == policy, "the stored AuthorizationPolicy reads back as another:\n\(stored)")
            }
        }
    }
}
