import FuzzSupport

@testable import MeshDNS

// The DNS response reader, on any datagram. Invariants:
// - every name read fits DNS's limits (labels of 1 to 63 bytes, 255 in all);
// - a response read, written out again (without compression), reads back
//   the same;
// - answering its own first question never traps, and gives addresses of
//   the question's family only.

/// `response` as a server could have sent it, names uncompressed.
func write(_ response: DNSResponse) -> [UInt8] {
    var bytes: [UInt8] = []
    func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    func u32(_ value: UInt32) { u16(UInt16(value >> 16)); u16(UInt16(value & 0xFFFF)) }
    u16(response.id)
    u16(0x8000 | (response.isTruncated ? 0x0200 : 0) | UInt16(response.rcode))
    u16(UInt16(response.questions.count))
    u16(UInt16(response.answers.count))
    u16(0)
    u16(0)
    for question in response.questions {
        bytes += question.name.wireBytes
        u16(question.type.rawValue)
        u16(dnsClassInternet)
    }
    for record in response.answers {
        bytes += record.name.wireBytes
        u16(record.type.rawValue)
        let data: [UInt8]
        switch record.data {
        case .a(let address), .aaaa(let address):
            u16(dnsClassInternet)
            data = address
        case .cname(let target):
            u16(dnsClassInternet)
            data = target.wireBytes
        case .unsupported:
            // Another class keeps it unsupported whatever its type.
            u16(3)
            data = []
        }
        u32(record.ttl)
        u16(UInt16(data.count))
        bytes += data
    }
    return bytes
}

func checkName(_ name: DNSName) {
    require(name.labels.allSatisfy { !$0.isEmpty && $0.count <= DNSName.maxLabelLength }, "a label out of bounds in \(name)")
    require(name.wireBytes.count <= DNSName.maxWireLength, "a name of \(name.wireBytes.count) bytes")
}

@_cdecl("FuzzDNSMessage_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        guard let response = try? DNSResponse(decoding: bytes) else { return }
        response.questions.forEach { checkName($0.name) }
        for record in response.answers {
            checkName(record.name)
            if case .cname(let target) = record.data {
                checkName(target)
            }
        }
        let again = write(response)
        guard let reread = try? DNSResponse(decoding: again) else {
            require(false, "\(response) written out does not read back")
            return
        }
        require(reread == response, "\(response) written out reads back as \(reread)")
        if let question = response.questions.first {
            let query = DNSQuery(id: response.id, question: question)
            if let answer = try? response.answer(to: query) {
                let size = question.type == .aaaa ? 16 : 4
                require(answer.addresses.allSatisfy { $0.count == size }, "addresses of another family in \(answer)")
                require(answer.addresses.isEmpty == (answer.ttl == nil), "a TTL without addresses or the reverse")
            }
        }
    }
}
