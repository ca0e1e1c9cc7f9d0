import NIOCore

/// A 128-bit trace id, as W3C Trace Context and B3 carry it in hex.
struct TraceID: Hashable {
    var high: UInt64
    var low: UInt64

    /// A new id: random and never all zeros (the spec's invalid value).
    static func random(using random: inout FastRandom) -> TraceID {
        TraceID(high: random.next(), low: random.next() | 1)
    }

    /// 32 hex digits (W3C, 128-bit B3) or 16 (64-bit B3, the high half zero).
    init?(hex: Substring) {
        switch hex.utf8.count {
        case 32:
            guard let high = HexDigits.parse(hex.prefix(16)), let low = HexDigits.parse(hex.suffix(16)) else { return nil }
            self.init(high: high, low: low)
        case 16:
            guard let low = HexDigits.parse(hex) else { return nil }
            self.init(high: 0, low: low)
        default:
            return nil
        }
        if high == 0 && low == 0 { return nil }
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    var hex: String { HexDigits.format(high) + HexDigits.format(low) }

    /// Big-endian, as OTLP's `trace_id` bytes.
    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(high, endianness: .big)
        buffer.writeInteger(low, endianness: .big)
    }
}

/// Span ids are 64-bit; zero is invalid.
enum SpanID {
    static func random(using random: inout FastRandom) -> UInt64 {
        random.next() | 1
    }

    static func parse(_ hex: Substring) -> UInt64? {
        guard hex.utf8.count == 16, let id = HexDigits.parse(hex), id != 0 else { return nil }
        return id
    }
}

/// Lowercase hex, as both W3C Trace Context and B3 write ids.
enum HexDigits {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Up to 16 hex digits, either case.
    static func parse(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8 {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// 16 digits, zero-padded.
    static func format(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { space in
            write(value, into: space, at: 0)
            return 16
        }
    }

    /// Writes `value` as 16 digits at `offset`.
    static func write(_ value: UInt64, into space: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            space[offset + index] = digits[Int(value >> UInt64(60 - 4 * index) & 0xF)]
        }
    }
}
