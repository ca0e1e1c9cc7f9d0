import FuzzSupport
import MeshConfig

// The proxy's config decoder (YAML, and JSON as YAML's subset), on any
// text. Invariants:
// - a document is either a config or issues, each with a message;
// - a config rendered as the admin's /config JSON decodes back to the same
//   config (what an operator reads there can be pasted back).

@_cdecl("FuzzConfig_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        let config: ProxyConfig
        do throws(ConfigErrors) {
            config = try ConfigLoader.decode(yaml: text)
        } catch {
            require(!error.issues.isEmpty && error.issues.allSatisfy { !$0.message.isEmpty },
                    "a refusal without a reason: \(error.issues)")
            return
        }
        let rendered = ConfigJSON.render(config)
        do throws(ConfigErrors) {
            let again = try ConfigLoader.decode(yaml: rendered)
            require(again == config, "the rendered config decodes to another:\n\(rendered)")
        } catch {
            require(false, "the rendered config is refused: \(error.issues)\n\(rendered)")
        }
    }
}
