/// What one response says about one question: the addresses of the name,
/// following CNAMEs, or an error for a failed lookup.
struct DNSAnswer: Hashable, Sendable {
    /// Packed addresses (4 bytes for A, 16 for AAAA) in the order the server sent them.
    var addresses: [[UInt8]]
    /// The smallest TTL of the address records and of the CNAMEs that led to
    /// them, in seconds; nil when there are no addresses.
    var ttl: UInt32?
}

extension DNSResponse {
    /// Interprets this response as the answer to `query`.
    ///
    /// NXDOMAIN means the name has no addresses, which is an answer (a headless
    /// service with no ready pods), not a failure; any other non-zero response
    /// code is a failure of the server.
    func answer(to query: DNSQuery) throws(DNSLookupError) -> DNSAnswer {
        guard id == query.id else {
            throw .malformedResponse("response id \(id) does not match query id \(query.id)")
        }
        switch rcode {
        case 0, 3:
            break
        default:
            // Checked before the question: some servers leave the question
            // section out of error responses.
            throw .serverFailure(rcode: rcode)
        }
        guard questions == [query.question] else {
            throw .malformedResponse(
                "response does not repeat the question (\(query.question.name), type \(query.question.type.rawValue))")
        }
        if rcode == 3 {
            return DNSAnswer(addresses: [], ttl: nil)
        }
        return addressRecords(for: query.question)
    }

    /// The addresses of `question.name`, through any chain of CNAMEs in the answer section.
    ///
    /// Servers list the chain in order, but the RFCs do not require it, so
    /// aliases are collected until no CNAME adds a new one. Each round either
    /// consumes a CNAME or stops, so a CNAME loop cannot spin forever.
    private func addressRecords(for question: DNSQuestion) -> DNSAnswer {
        var aliases: Set<DNSName> = [question.name]
        var followed = Set<Int>()
        var ttls: [UInt32] = []
        var foundNewAlias = true
        while foundNewAlias {
            foundNewAlias = false
            for (index, record) in answers.enumerated() where !followed.contains(index) {
                guard case .cname(let target) = record.data, aliases.contains(record.name) else { continue }
                followed.insert(index)
                ttls.append(record.ttl)
                aliases.insert(target)
                foundNewAlias = true
            }
        }

        var addresses: [[UInt8]] = []
        for record in answers where aliases.contains(record.name) {
            switch (question.type, record.data) {
            case (.a, .a(let bytes)), (.aaaa, .aaaa(let bytes)):
                addresses.append(bytes)
                ttls.append(record.ttl)
            default:
                continue
            }
        }
        return DNSAnswer(addresses: addresses, ttl: addresses.isEmpty ? nil : ttls.min())
    }
}
