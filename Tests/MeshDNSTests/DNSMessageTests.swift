import Testing

@testable import MeshDNS

@Suite("DNS message codec")
struct DNSMessageTests {
    /// `svc.test` starts right after the header, so pointers to it are 0xC00C.
    let svcTest = name("svc", "test")

    func query(_ type: DNSRecordType, _ text: String = "svc.test", id: UInt16 = 0x1234) throws -> DNSQuery {
        DNSQuery(id: id, question: DNSQuestion(name: try DNSName(validating: text), type: type))
    }

    @Test func encodesQueryWithRecursionDesired() throws {
        let bytes = try query(.aaaa, "Svc.Test.", id: 0xBEEF).encode()
        #expect(bytes == u16(0xBEEF) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(0) + question(svcTest, type: 28))
    }

    @Test func queryIDsVary() throws {
        let name = try DNSName(validating: "svc.test")
        let ids = Set((0..<16).map { _ in DNSQuery(question: DNSQuestion(name: name, type: .a)).id })
        #expect(ids.count > 1)
    }

    @Test func multipleARecords() throws {
        let message = header(answers: 2) + question(svcTest, type: 1)
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 2])
            + record(pointer(12), type: 1, ttl: 10, data: [127, 0, 0, 3])
        let answer = try DNSResponse(decoding: message).answer(to: try query(.a))
        #expect(answer == DNSAnswer(addresses: [[127, 0, 0, 2], [127, 0, 0, 3]], ttl: 10))
    }

    @Test func aaaaRecord() throws {
        let loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]
        let message = header(answers: 1) + question(svcTest, type: 28)
            + record(pointer(12), type: 28, ttl: 300, data: loopback)
        let answer = try DNSResponse(decoding: message).answer(to: try query(.aaaa))
        #expect(answer == DNSAnswer(addresses: [loopback], ttl: 300))
    }

    @Test func cnameChainWithChainedCompressionPointers() throws {
        // Offsets: question name "www.example" at 12 ("example" at 16), first
        // answer at 29 with rdata "web" + ->16 at 41, second answer at 47 with
        // rdata "svc" + ->16 at 59, third answer named ->59 (a pointer to a
        // name that itself ends in a pointer).
        let www = name("www", "example")
        let message = header(answers: 5) + question(www, type: 1)
            + record(pointer(12), type: 5, ttl: 300, data: [3] + Array("web".utf8) + pointer(16))
            + record(pointer(41), type: 5, ttl: 60, data: [3] + Array("svc".utf8) + pointer(16))
            + record(pointer(59), type: 1, ttl: 120, data: [10, 0, 0, 1])
            // Neither the unrelated name nor the TXT record belong to the answer.
            + record(name("other", "example"), type: 1, ttl: 1, data: [10, 9, 9, 9])
            + record(pointer(59), type: 16, ttl: 1, data: [2, 0x68, 0x69])
        let response = try DNSResponse(decoding: message)
        #expect(response.answers.count == 5)
        #expect(response.answers[1].data == .cname(try DNSName(validating: "svc.example")))
        let answer = try response.answer(to: try query(.a, "www.example"))
        #expect(answer == DNSAnswer(addresses: [[10, 0, 0, 1]], ttl: 60))
    }

    @Test func cnameListedAfterItsTargetIsStillFollowed() throws {
        // The A record for the alias target comes before the CNAME that leads to it.
        let message = header(answers: 2) + question(svcTest, type: 1)
            + record(name("pod", "test"), type: 1, ttl: 50, data: [10, 0, 0, 7])
            + record(pointer(12), type: 5, ttl: 40, data: name("pod", "test"))
        let answer = try DNSResponse(decoding: message).answer(to: try query(.a))
        #expect(answer == DNSAnswer(addresses: [[10, 0, 0, 7]], ttl: 40))
    }

    @Test func cnameLoopEndsWithoutAddresses() throws {
        let message = header(answers: 2) + question(svcTest, type: 1)
            + record(pointer(12), type: 5, ttl: 5, data: name("b", "test"))
            + record(name("b", "test"), type: 5, ttl: 5, data: pointer(12))
        let answer = try DNSResponse(decoding: message).answer(to: try query(.a))
        #expect(answer == DNSAnswer(addresses: [], ttl: nil))
    }

    @Test func pointerToItselfIsMalformed() throws {
        // The answer starts at offset 26 and its name is a pointer to 26.
        let message = header(answers: 1) + question(svcTest, type: 1)
            + record(pointer(26), type: 1, ttl: 5, data: [127, 0, 0, 2])
        #expect(isMalformed { try DNSResponse(decoding: message) })
    }

    @Test func pointerLoopThroughAnotherPointerIsMalformed() throws {
        // The question name is "a" followed by a pointer to the answer's name
        // at 20 (forward), which points back to the question: a two-step loop.
        let message = header(answers: 1) + [1, 0x61] + pointer(20) + u16(1) + u16(1)
            + record(pointer(12), type: 1, ttl: 5, data: [127, 0, 0, 2])
        #expect(isMalformed { try DNSResponse(decoding: message) })
    }

    @Test func pointerPastTheEndIsMalformed() throws {
        let message = header(answers: 1) + question(svcTest, type: 1) + pointer(0x3FFF)
        #expect(isMalformed { try DNSResponse(decoding: message) })
    }

    @Test func truncatedMessageIsMalformed() throws {
        let full = header(answers: 2) + question(svcTest, type: 1)
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 2])
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 3])
        for length in [0, 5, 11, 20, 27, full.count - 1] {
            #expect(isMalformed { try DNSResponse(decoding: Array(full.prefix(length))) }, "cut at \(length)")
        }
    }

    @Test func truncatedFlagKeepsTheRecordsThatArrived() throws {
        // TC set (0x0200): the second record is cut off; the first still counts.
        let message = header(flags: 0x8380, answers: 2) + question(svcTest, type: 1)
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 2])
            + pointer(12) + u16(1)
        let response = try DNSResponse(decoding: message)
        #expect(response.isTruncated)
        #expect(try response.answer(to: try query(.a)) == DNSAnswer(addresses: [[127, 0, 0, 2]], ttl: 30))
    }

    @Test func nxdomainIsAnEmptyAnswer() throws {
        let message = header(flags: 0x8183, answers: 0) + question(svcTest, type: 1)
        #expect(try DNSResponse(decoding: message).answer(to: try query(.a)) == DNSAnswer(addresses: [], ttl: nil))
    }

    @Test func servfailIsServerFailure() throws {
        let message = header(flags: 0x8182, answers: 0) + question(svcTest, type: 1)
        #expect(throws: DNSLookupError.serverFailure(rcode: 2)) {
            try DNSResponse(decoding: message).answer(to: try query(.a))
        }
    }

    @Test func refusedWithoutQuestionIsServerFailure() throws {
        let message = header(flags: 0x8185, questions: 0, answers: 0)
        #expect(throws: DNSLookupError.serverFailure(rcode: 5)) {
            try DNSResponse(decoding: message).answer(to: try query(.a))
        }
    }

    @Test func questionIsComparedCaseInsensitively() throws {
        let message = header(answers: 1) + question(name("SVC", "Test"), type: 1)
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 2])
        let answer = try DNSResponse(decoding: message).answer(to: try query(.a))
        #expect(answer.addresses == [[127, 0, 0, 2]])
    }

    @Test func otherQuestionIsMalformed() throws {
        let message = header(answers: 0) + question(svcTest, type: 28)
        #expect(isMalformed { try DNSResponse(decoding: message).answer(to: try query(.a)) })
    }

    @Test func otherIDIsMalformed() throws {
        let message = header(id: 0x4321, answers: 0) + question(svcTest, type: 1)
        #expect(isMalformed { try DNSResponse(decoding: message).answer(to: try query(.a)) })
    }

    @Test func queryInsteadOfResponseIsMalformed() throws {
        let message = header(flags: 0x0100, answers: 0) + question(svcTest, type: 1)
        #expect(isMalformed { try DNSResponse(decoding: message) })
    }

    @Test func addressRecordOfWrongLengthIsMalformed() throws {
        let message = header(answers: 1) + question(svcTest, type: 1)
            + record(pointer(12), type: 1, ttl: 30, data: [127, 0, 0, 2, 9])
        #expect(isMalformed { try DNSResponse(decoding: message) })
    }

    @Test func peekIDReadsTheFirstTwoBytes() {
        #expect(DNSResponse.peekID([0xAB, 0xCD, 0x81]) == 0xABCD)
        #expect(DNSResponse.peekID([0xAB]) == nil)
    }
}

/// Whether `body` throws `DNSLookupError.malformedResponse`, whatever its message.
func isMalformed(_ body: () throws -> Any) -> Bool {
    do {
        _ = try body()
        return false
    } catch let error as DNSLookupError {
        if case .malformedResponse = error { return true }
        return false
    } catch {
        return false
    }
}
