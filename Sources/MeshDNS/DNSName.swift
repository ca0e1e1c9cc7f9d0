/// A domain name as a sequence of labels, lowercased.
///
/// DNS compares names case-insensitively, so both the names we ask for and the
/// names a server answers with are folded to lowercase ASCII once, here; plain
/// equality then matches the way DNS compares.
struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The labels from left to right, without length prefixes; the root label is implicit.
    private(set) var labels: [[UInt8]]

    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    static let maxLabelLength = 63
    /// RFC 1035 §2.3.4 allows 255 octets on the wire, which is 253 characters
    /// in dotted text without the trailing dot.
    static let maxTextLength = 253
    /// The same limit counted in wire octets (length prefixes and the root label).
    static let maxWireLength = 255

    /// Labels read off the wire; the reader has already bounded their lengths.
    init(wireLabels: [[UInt8]]) {
        self.labels = wireLabels.map(Self.lowercased)
    }

    /// Validates a name typed by a user or found in config.
    ///
    /// The trailing dot is optional. Only printable ASCII is accepted: we do
    /// not convert internationalized names to punycode, so anything else would
    /// be sent as bytes no server would match.
    init(validating text: String) throws(DNSLookupError) {
        var bytes = Array(text.utf8)
        if bytes.last == UInt8(ascii: ".") {
            bytes.removeLast()
        }
        guard !bytes.isEmpty else {
            throw .invalidName("\(text.debugDescription): the name is empty")
        }
        guard bytes.count <= Self.maxTextLength else {
            throw .invalidName("\(text.debugDescription): longer than \(Self.maxTextLength) characters")
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalidName("\(text.debugDescription): only printable ASCII without spaces is allowed")
        }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty else {
                throw .invalidName("\(text.debugDescription): empty label")
            }
            guard label.count <= Self.maxLabelLength else {
                throw .invalidName(
                    "\(text.debugDescription): label longer than \(Self.maxLabelLength) characters")
            }
        }
        self.labels = labels.map { Self.lowercased(Array($0)) }
    }

    /// The name in wire form: each label with its length prefix, then the root label.
    var wireBytes: [UInt8] {
        var bytes: [UInt8] = []
        for label in labels {
            bytes.append(UInt8(label.count))
            bytes.append(contentsOf: label)
        }
        bytes.append(0)
        return bytes
    }

    /// Dotted text, for error messages.
    var description: String {
        labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
    }

    private static func lowercased(_ label: [UInt8]) -> [UInt8] {
        label.map { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
        }
    }
}
