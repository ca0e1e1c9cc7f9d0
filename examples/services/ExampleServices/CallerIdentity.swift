import GRPCCore

/// Who called, as the instance's sidecar vouched for it: the sidecar checks
/// the caller's certificate (mutual TLS) and passes its SPIFFE identity on
/// in `swiftmesh-client-identity`, removing any such header a caller sent.
/// The service itself does no TLS and trusts only its own sidecar.
enum CallerIdentity {
    static let header = "swiftmesh-client-identity"

    static func of(_ metadata: Metadata) -> String {
        metadata[stringValues: header].first(where: { _ in true }) ?? ""
    }
}
