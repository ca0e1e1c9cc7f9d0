/// An IPv4 or IPv6 address literal, parsed in pure Swift so that this target
/// needs no system calls. Kept as bytes so that different spellings of one
/// address (`::1`, `0:0:0:0:0:0:0:1`) compare equal.
struct IPLiteral: Hashable {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    let bytes: [UInt8]

    var isIPv4: Bool { bytes.count == 4 }

    /// `0.0.0.0` or `::`: binding it takes the port on every address.
    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Accepts dotted-quad IPv4 (no leading zeros, which some parsers read as
    /// octal) and RFC 4291 IPv6 text, including `::` and an IPv4 tail.
    /// Zone suffixes (`%eth0`) are not accepted.
    init?(_ text: Substring) {
        if let v4 = IPLiteral.ipv4Bytes(text) {
            bytes = v4
        } else if let v6 = IPLiteral.ipv6Bytes(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    private static func ipv4Bytes(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count),
                  part.allSatisfy({ $0 >= "0" && $0 <= "9" }),
                  part == "0" || part.first != "0",
                  let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func ipv6Bytes(_ text: Substring) -> [UInt8]? {
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        let compressed = halves.count == 2
        guard let head = groups(halves[0], mayEndInIPv4: !compressed) else { return nil }
        let tail: [UInt16]
        if compressed {
            guard let parsed = groups(halves[1], mayEndInIPv4: true) else { return nil }
            tail = parsed
        } else {
            tail = []
        }
        let written = head.count + tail.count
        // `::` stands for at least one zero group.
        guard compressed ? written <= 7 : written == 8 else { return nil }
        let all = head + Array(repeating: 0, count: 8 - written) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// The 16-bit groups of one side of `::`; an IPv4 tail counts as two groups.
    private static func groups(_ text: Substring, mayEndInIPv4: Bool) -> [UInt16]? {
        guard !text.isEmpty else { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if mayEndInIPv4, index == parts.count - 1, part.contains(".") {
                guard let v4 = ipv4Bytes(part) else { return nil }
                groups.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                groups.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
            } else {
                guard (1...4).contains(part.count),
                      part.allSatisfy(\.isHexDigit),
                      let value = UInt16(part, radix: 16) else { return nil }
                groups.append(value)
            }
        }
        return groups
    }
}
