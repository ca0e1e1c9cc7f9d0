/// Host names as DNS carries them: dot-separated labels of 1-63 letters,
/// digits, `-` (not at either end) and `_`, at most 253 characters, with an
/// optional trailing dot.
enum DNSNameSyntax {
    static func isValid(_ name: Substring) -> Bool {
        let withoutRoot = name.last == "." ? name.dropLast() : name
        guard !withoutRoot.isEmpty, withoutRoot.count <= 253 else { return false }
        let labels = withoutRoot.split(separator: ".", omittingEmptySubsequences: false)
        // All-numeric names look like mistyped IPv4 literals (`10.0.0.256`);
        // no real top-level domain is numeric.
        if labels.allSatisfy({ $0.allSatisfy { $0 >= "0" && $0 <= "9" } }) {
            return false
        }
        return labels.allSatisfy { label in
            (1...63).contains(label.count)
                && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
