/// The mesh's workload identities: `spiffe://<trust-domain>/service/<name>`,
/// the URI name in every sidecar's certificate.
public enum SPIFFEID {
    /// The identity of a service's instances.
    public static func service(_ service: String, trustDomain: String) -> String {
        "spiffe://\(trustDomain)/service/\(service)"
    }

    /// The control plane's identity, in its serving certificate.
    public static func controlPlane(trustDomain: String) -> String {
        "spiffe://\(trustDomain)/control-plane"
    }

    /// The name sidecars check the control plane's serving certificate for
    /// (TLS server name), whatever address they reach it at: the
    /// certificate's chain to the mesh's root is what proves it.
    public static let controlPlaneServerName = "control-plane.swiftmesh"

    /// The trust domain and service of a mesh identity; nil for any other name.
    public static func parse(_ identity: String) -> (trustDomain: String, service: String)? {
        guard identity.hasPrefix("spiffe://") else { return nil }
        let rest = identity.dropFirst("spiffe://".count)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "service", !parts[0].isEmpty, !parts[2].isEmpty else { return nil }
        return (String(parts[0]), String(parts[2]))
    }
}

/// A SPIFFE trust domain: lowercase letters, digits, dots, dashes and
/// underscores (the SPIFFE ID standard, section 2.1).
public enum TrustDomainSyntax {
    public static func problem(_ domain: String) -> String? {
        guard !domain.isEmpty, domain.utf8.count <= 255 else {
            return "a trust domain has 1 to 255 characters, such as swiftmesh.local"
        }
        let allowed = domain.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
        }
        return allowed ? nil : "\"\(domain)\" is not a trust domain: use lowercase letters, digits, dots, dashes and underscores, such as swiftmesh.local"
    }
}
