/// Small helpers to write DNS messages by hand in tests, so each byte array
/// reads as the fields it holds.

func u16(_ value: UInt16) -> [UInt8] {
    [UInt8(value >> 8), UInt8(value & 0xFF)]
}

func u32(_ value: UInt32) -> [UInt8] {
    u16(UInt16(value >> 16)) + u16(UInt16(value & 0xFFFF))
}

/// Uncompressed labels followed by the root label, e.g. `name("svc", "test")`.
func name(_ labels: String...) -> [UInt8] {
    labels.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
}

/// A compression pointer to `offset`.
func pointer(_ offset: UInt16) -> [UInt8] {
    u16(0xC000 | offset)
}

/// The 12-byte header. Flags default to a standard answer: QR, RD, RA, rcode 0.
func header(id: UInt16 = 0x1234, flags: UInt16 = 0x8180, questions: UInt16 = 1, answers: UInt16) -> [UInt8] {
    u16(id) + u16(flags) + u16(questions) + u16(answers) + u16(0) + u16(0)
}

/// A question entry of class IN.
func question(_ encodedName: [UInt8], type: UInt16) -> [UInt8] {
    encodedName + u16(type) + u16(1)
}

/// An answer record of class IN.
func record(_ encodedName: [UInt8], type: UInt16, ttl: UInt32, data: [UInt8]) -> [UInt8] {
    encodedName + u16(type) + u16(1) + u32(ttl) + u16(UInt16(data.count)) + data
}
