/// Bounds-checked reading of a DNS message, including compressed names.
///
/// Every read checks the remaining length and throws `malformedResponse`
/// instead of trapping: the bytes come from the network.
struct DNSWireReader {
    private let bytes: [UInt8]
    /// The position of the next byte to read.
    private(set) var offset: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    mutating func readUInt8() throws(DNSLookupError) -> UInt8 {
        guard offset < bytes.count else {
            throw .malformedResponse("message ends at byte \(offset), expected more")
        }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(DNSLookupError) -> UInt16 {
        let high = try readUInt8()
        let low = try readUInt8()
        return UInt16(high) << 8 | UInt16(low)
    }

    mutating func readUInt32() throws(DNSLookupError) -> UInt32 {
        let high = try readUInt16()
        let low = try readUInt16()
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func readBytes(_ count: Int) throws(DNSLookupError) -> [UInt8] {
        try checkRemaining(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Moves past data this client does not interpret, such as the rdata of other record types.
    mutating func skip(_ count: Int) throws(DNSLookupError) {
        try checkRemaining(count)
        offset += count
    }

    private func checkRemaining(_ count: Int) throws(DNSLookupError) {
        guard count >= 0, count <= bytes.count - offset else {
            throw .malformedResponse("message ends at byte \(bytes.count), expected \(count) more bytes at \(offset)")
        }
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4) and moves past it.
    ///
    /// A compression pointer must point strictly before the pointer itself.
    /// That is what every encoder produces (a pointer refers to a name already
    /// written) and it makes loops impossible: each jump goes to a smaller
    /// offset, so decoding always ends.
    mutating func readName() throws(DNSLookupError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1  // the root label
        var position = offset
        // Where reading continues after the name: right after the first
        // pointer if there is one, else after the root label.
        var resumeOffset: Int?

        while true {
            guard position < bytes.count else {
                throw .malformedResponse("name at byte \(offset) runs past the end of the message")
            }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    offset = resumeOffset ?? position + 1
                    return DNSName(wireLabels: labels)
                }
                let start = position + 1
                let end = start + Int(length)
                guard end <= bytes.count else {
                    throw .malformedResponse("label at byte \(position) runs past the end of the message")
                }
                wireLength += 1 + Int(length)
                guard wireLength <= DNSName.maxWireLength else {
                    throw .malformedResponse("name at byte \(offset) is longer than \(DNSName.maxWireLength) bytes")
                }
                labels.append(Array(bytes[start..<end]))
                position = end
            case 0xC0:
                guard position + 1 < bytes.count else {
                    throw .malformedResponse("compression pointer at byte \(position) is cut off")
                }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < position else {
                    throw .malformedResponse(
                        "compression pointer at byte \(position) points forward or to itself (\(target))")
                }
                if resumeOffset == nil {
                    resumeOffset = position + 2
                }
                position = target
            default:
                // 0x40 and 0x80 were extended label types (RFC 6891 retired them); nothing sends them.
                throw .malformedResponse("unsupported label type 0x\(String(length, radix: 16)) at byte \(position)")
            }
        }
    }
}
