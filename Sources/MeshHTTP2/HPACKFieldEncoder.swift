import NIOCore
import NIOHPACK

/// Encodes header blocks (RFC 7541) the cheapest way for a proxy: fields
/// that are whole entries of the static table go out as one index byte;
/// every other field is a literal that refers to the static table for its
/// name when it can, and is never added to a dynamic table. Strings are sent
/// as they are, without Huffman coding.
///
/// A proxy forwards fields it did not choose (dates, request ids, lengths)
/// whose values rarely repeat on a connection, so the dynamic table would
/// mostly hold entries nobody refers to again, and looking fields up in it
/// costs more than the bytes it saves; Huffman coding saves about a fifth of
/// the bytes and costs a table lookup per byte. Both hops of a sidecar run on
/// loopback or a data-center network, where the CPU is the scarcer resource.
///
/// The first block announces a dynamic table size of 0, so that no later
/// change of the peer's SETTINGS_HEADER_TABLE_SIZE concerns this encoder.
package struct HPACKFieldEncoder {
    private var announcedNoTable = false

    package mutating func encode(_ block: HPACKHeaders, into buffer: inout ByteBuffer) {
        if !announcedNoTable {
            announcedNoTable = true
            buffer.writeInteger(UInt8(0x20))  // dynamic table size update, to 0
        }
        for (name, value, indexing) in block {
            encodeField(name, value, neverIndexed: indexing == .neverIndexed, into: &buffer)
        }
    }

    private func encodeField(_ name: String, _ value: String, neverIndexed: Bool, into buffer: inout ByteBuffer) {
        let literalPrefix: UInt8 = neverIndexed ? 0x10 : 0x00
        guard let nameIndex = HPACKStaticTable.firstIndex(ofName: name) else {
            buffer.writeInteger(literalPrefix)
            Self.writeString(name, into: &buffer)
            Self.writeString(value, into: &buffer)
            return
        }
        if !neverIndexed, let index = HPACKStaticTable.index(ofName: name, startingAt: nameIndex, value: value) {
            Self.writeInteger(index, prefixBits: 7, flags: 0x80, into: &buffer)
            return
        }
        Self.writeInteger(nameIndex, prefixBits: 4, flags: literalPrefix, into: &buffer)
        Self.writeString(value, into: &buffer)
    }

    /// A string literal without Huffman coding.
    private static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        writeInteger(string.utf8.count, prefixBits: 7, flags: 0, into: &buffer)
        buffer.writeString(string)
    }

    /// RFC 7541 section 5.1.
    package static func writeInteger(_ value: Int, prefixBits: Int, flags: UInt8, into buffer: inout ByteBuffer) {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else {
            buffer.writeInteger(flags | UInt8(value))
            return
        }
        buffer.writeInteger(flags | UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            buffer.writeInteger(UInt8(rest & 0x7F | 0x80))
            rest >>= 7
        }
        buffer.writeInteger(UInt8(rest))
    }
}

/// RFC 7541 Appendix A, looked up by name length first: the fields of a
/// block are short strings, and Swift compares two short strings in a word
/// or two, so a lookup is a handful of comparisons and no hashing.
package enum HPACKStaticTable {
    /// Entries 1 to 61, in order.
    package static let entries: [(name: String, value: String)] = [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
        ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
        ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
        ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
        ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
        ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
        ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ]

    /// For each name length, the distinct names of that length with the
    /// index of their first entry.
    private static let namesByLength: [[(name: String, index: Int)]] = {
        var table = [[(name: String, index: Int)]](repeating: [], count: 28)
        for (offset, entry) in entries.enumerated() where !table[entry.name.utf8.count].contains(where: { $0.name == entry.name }) {
            table[entry.name.utf8.count].append((entry.name, offset + 1))
        }
        return table
    }()

    /// The 1-based index of the first entry named `name`.
    package static func firstIndex(ofName name: String) -> Int? {
        let length = name.utf8.count
        guard length < namesByLength.count else { return nil }
        for candidate in namesByLength[length] where candidate.name == name {
            return candidate.index
        }
        return nil
    }

    /// The index of the entry `name: value`, searching the entries for
    /// `name`, which start at `first`.
    package static func index(ofName name: String, startingAt first: Int, value: String) -> Int? {
        var index = first
        while index <= entries.count, entries[index - 1].name == name {
            if entries[index - 1].value == value {
                return index
            }
            index += 1
        }
        return nil
    }
}
