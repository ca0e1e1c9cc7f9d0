/// The DNS wire format (RFC 1035 §4), limited to what an A/AAAA client needs:
/// encoding one query and decoding the header, questions and answer section
/// of a response. Plain values over byte arrays, no I/O, so the codec is
/// tested with handcrafted messages.

/// A record type code; unknown types are kept by number and ignored.
struct DNSRecordType: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt16

    static let a = DNSRecordType(rawValue: 1)
    static let cname = DNSRecordType(rawValue: 5)
    static let aaaa = DNSRecordType(rawValue: 28)
}

/// The class code for the Internet, the only one this client asks about.
let dnsClassInternet: UInt16 = 1

/// A question: which records of which name. The class is always IN.
struct DNSQuestion: Hashable, Sendable {
    var name: DNSName
    var type: DNSRecordType
}

/// A query as sent: one question, recursion desired.
struct DNSQuery: Hashable, Sendable {
    /// Matches the response to the query; random so that an off-path sender
    /// cannot easily guess it (together with the random ephemeral port).
    var id: UInt16
    var question: DNSQuestion

    init(id: UInt16 = .random(in: .min ... .max), question: DNSQuestion) {
        self.id = id
        self.question = question
    }

    func encode() -> [UInt8] {
        // Header flags: only RD (recursion desired), so a forwarding resolver
        // such as a node-local cache resolves the name for us.
        let flags: UInt16 = 0x0100
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12 + DNSName.maxWireLength + 4)
        for field in [id, flags, 1, 0, 0, 0] {  // id, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
            bytes.appendUInt16(field)
        }
        bytes.append(contentsOf: question.name.wireBytes)
        bytes.appendUInt16(question.type.rawValue)
        bytes.appendUInt16(dnsClassInternet)
        return bytes
    }
}

/// The data of an answer record, decoded for the types this client uses.
enum DNSRecordData: Hashable, Sendable {
    /// An IPv4 address, 4 bytes in network order.
    case a([UInt8])
    /// An IPv6 address, 16 bytes in network order.
    case aaaa([UInt8])
    /// The canonical name the owner is an alias of.
    case cname(DNSName)
    /// Any other type or class; kept so that answer counts stay honest, never used.
    case unsupported
}

/// One resource record of the answer section.
struct DNSResourceRecord: Hashable, Sendable {
    var name: DNSName
    var type: DNSRecordType
    /// Seconds the record may be cached.
    var ttl: UInt32
    var data: DNSRecordData
}

/// A decoded response. Authority and additional sections are not decoded:
/// the addresses we want are in the answer section.
struct DNSResponse: Hashable, Sendable {
    var id: UInt16
    /// The response code (RFC 1035 §4.1.1): 0 no error, 3 NXDOMAIN, others failures.
    var rcode: Int
    /// TC: the server had more to say than fits in a UDP datagram.
    var isTruncated: Bool
    var questions: [DNSQuestion]
    var answers: [DNSResourceRecord]

    /// The id of a datagram, read before decoding it so that datagrams meant
    /// for another query (a late answer, a spoofing attempt) can be dropped
    /// without judging their content.
    static func peekID(_ bytes: [UInt8]) -> UInt16? {
        guard bytes.count >= 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    init(decoding bytes: [UInt8]) throws(DNSLookupError) {
        var reader = DNSWireReader(bytes)
        id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        guard flags & 0x8000 != 0 else {
            throw .malformedResponse("QR bit not set: the message is a query, not a response")
        }
        isTruncated = flags & 0x0200 != 0
        rcode = Int(flags & 0x000F)
        let questionCount = try reader.readUInt16()
        let answerCount = try reader.readUInt16()
        // NSCOUNT and ARCOUNT: those sections are not decoded.
        try reader.skip(4)

        questions = []
        for _ in 0..<questionCount {
            let name = try reader.readName()
            let type = DNSRecordType(rawValue: try reader.readUInt16())
            let recordClass = try reader.readUInt16()
            // A question of another class cannot match ours; drop it here so
            // the question check compares like with like.
            if recordClass == dnsClassInternet {
                questions.append(DNSQuestion(name: name, type: type))
            }
        }

        answers = []
        for _ in 0..<answerCount {
            // No TCP fallback: a truncated response is used as far as it
            // arrived. For A/AAAA lookups a datagram holds dozens of records,
            // and a partial set of endpoints beats none; the next refresh asks
            // again anyway. So a record cut off by truncation ends the answer
            // section instead of failing the whole response.
            do {
                answers.append(try Self.readRecord(&reader))
            } catch {
                guard isTruncated else { throw error }
                break
            }
        }
    }

    private static func readRecord(_ reader: inout DNSWireReader) throws(DNSLookupError) -> DNSResourceRecord {
        let name = try reader.readName()
        let type = DNSRecordType(rawValue: try reader.readUInt16())
        let recordClass = try reader.readUInt16()
        // RFC 2181 §8: a TTL with the top bit set is treated as zero.
        let rawTTL = try reader.readUInt32()
        let ttl = rawTTL > UInt32(Int32.max) ? 0 : rawTTL
        let dataLength = Int(try reader.readUInt16())
        let dataStart = reader.offset

        let data: DNSRecordData
        switch (recordClass, type) {
        case (dnsClassInternet, .a):
            guard dataLength == 4 else {
                throw .malformedResponse("A record for \(name) has \(dataLength) bytes of data, expected 4")
            }
            data = .a(try reader.readBytes(4))
        case (dnsClassInternet, .aaaa):
            guard dataLength == 16 else {
                throw .malformedResponse("AAAA record for \(name) has \(dataLength) bytes of data, expected 16")
            }
            data = .aaaa(try reader.readBytes(16))
        case (dnsClassInternet, .cname):
            data = .cname(try reader.readName())
            guard reader.offset == dataStart + dataLength else {
                throw .malformedResponse("CNAME record for \(name) does not fill its \(dataLength) bytes of data")
            }
        default:
            try reader.skip(dataLength)
            data = .unsupported
        }
        return DNSResourceRecord(name: name, type: type, ttl: ttl, data: data)
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }
}
