/// Service names as the mesh writes them: what a DNS label allows, so that a
/// name works as a host name, a cluster name and a metric label alike.
public enum ServiceNameSyntax {
    public static func isValid(_ name: String) -> Bool {
        problem(name) == nil
    }

    /// What is wrong with `name` and what would fix it; nil for a valid name.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty {
            return "a service needs a name"
        }
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
        guard allowed, name.utf8.count <= 63, !name.hasPrefix("-"), !name.hasSuffix("-") else {
            return "\"\(name)\" is not a service name; use lower-case letters, digits and inner dashes, at most 63 (a DNS label)"
        }
        return nil
    }
}
