/// Header names compare without case (RFC 9110 section 5.1), and only
/// ASCII letters fold: comparing bytes avoids lowercasing a copy per field.
extension String {
    /// ASCII case-insensitive equality with a lowercase name.
    @inlinable
    package func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        utf8.equalsIgnoringASCIICase(UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }
}

extension Sequence<UInt8> {
    /// ASCII case-insensitive equality of two byte sequences.
    @inlinable
    package func equalsIgnoringASCIICase(_ other: some Sequence<UInt8>) -> Bool {
        func lowered(_ byte: UInt8) -> UInt8 {
            byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
        }
        return elementsEqual(other) { lowered($0) == lowered($1) }
    }
}

extension Substring {
    /// Without optional whitespace (SP, HTAB) at either end, as list elements
    /// in field values are written (RFC 9110 section 5.6.1).
    package func trimmingOptionalWhitespace() -> Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}

extension String {
    /// Whether the string is a non-empty token (RFC 9110 section 5.6.2),
    /// with `uppercase` letters or without (HTTP/2 field names). One call
    /// per string: the test per byte stays inside this module, where it inlines.
    package func isToken(uppercase: Bool) -> Bool {
        func allowed(_ byte: UInt8) -> Bool {
            HTTP1Parser.isTokenByte(byte) && (uppercase || !(byte >= 0x41 && byte <= 0x5A))
        }
        guard !isEmpty else { return false }
        return utf8.withContiguousStorageIfAvailable { $0.allSatisfy(allowed) } ?? utf8.allSatisfy(allowed)
    }
}

extension UInt8 {
    /// The value of a hexadecimal digit, either case: chunk sizes (RFC 9112
    /// section 7.1) and percent-encoded octets (RFC 3986 section 2.1).
    package var hexDigitValue: Int? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(self - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(self - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(self - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
