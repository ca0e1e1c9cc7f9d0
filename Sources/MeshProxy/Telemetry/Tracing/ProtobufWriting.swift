import NIOCore

/// The protobuf wire format, as far as OTLP spans need it: varints,
/// fixed64 timestamps and length-delimited fields. Written straight into a
/// ByteBuffer so that a span costs no message objects.
extension ByteBuffer {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2
    }

    static func protobufVarintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// One write of up to 10 bytes, not one per byte: spans hold dozens of varints.
    mutating func writeProtobufVarint(_ value: UInt64) {
        if value < 0x80 {
            writeInteger(UInt8(value))
            return
        }
        var value = value
        var bytes: (UInt64, UInt64) = (0, 0)
        let count = withUnsafeMutableBytes(of: &bytes) { space in
            var index = 0
            while value >= 0x80 {
                space[index] = UInt8(truncatingIfNeeded: value) | 0x80
                value >>= 7
                index += 1
            }
            space[index] = UInt8(value)
            return index + 1
        }
        withUnsafeBytes(of: &bytes) { writeBytes(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
    }

    /// Every OTLP field number used here is below 16: the key is one byte.
    mutating func writeProtobufKey(_ field: Int, _ type: WireType) {
        assert(field < 16)
        writeInteger(UInt8(field << 3) | type.rawValue)
    }

    mutating func writeProtobufVarintField(_ field: Int, _ value: UInt64) {
        writeProtobufKey(field, .varint)
        writeProtobufVarint(value)
    }

    mutating func writeProtobufFixed64Field(_ field: Int, _ value: UInt64) {
        writeProtobufKey(field, .fixed64)
        writeInteger(value, endianness: .little)
    }

    mutating func writeProtobufStringField(_ field: Int, _ value: String) {
        writeProtobufKey(field, .lengthDelimited)
        writeProtobufVarint(UInt64(value.utf8.count))
        writeString(value)
    }

    /// A nested message (or bytes) already encoded in `message`.
    mutating func writeProtobufMessageField(_ field: Int, _ message: ByteBuffer) {
        writeProtobufKey(field, .lengthDelimited)
        writeProtobufVarint(UInt64(message.readableBytes))
        writeImmutableBuffer(message)
    }

    /// An OTLP `KeyValue` (common.proto) with a string value, at `field`.
    mutating func writeOTLPAttribute(_ field: Int, key: String, value: some StringProtocol) {
        let valueSize = value.utf8.count
        let anyValueSize = 1 + Self.protobufVarintSize(UInt64(valueSize)) + valueSize
        writeOTLPKeyValueHeader(field, key: key, anyValueSize: anyValueSize)
        writeProtobufKey(1, .lengthDelimited)  // AnyValue.string_value
        writeProtobufVarint(UInt64(valueSize))
        writeBytes(value.utf8)
    }

    /// An OTLP `KeyValue` with an integer value.
    mutating func writeOTLPAttribute(_ field: Int, key: String, value: Int) {
        let encoded = UInt64(bitPattern: Int64(value))
        writeOTLPKeyValueHeader(field, key: key, anyValueSize: 1 + Self.protobufVarintSize(encoded))
        writeProtobufVarintField(3, encoded)  // AnyValue.int_value
    }

    private mutating func writeOTLPKeyValueHeader(_ field: Int, key: String, anyValueSize: Int) {
        let keySize = key.utf8.count
        let keyValueSize = 1 + Self.protobufVarintSize(UInt64(keySize)) + keySize
            + 1 + Self.protobufVarintSize(UInt64(anyValueSize)) + anyValueSize
        writeProtobufKey(field, .lengthDelimited)
        writeProtobufVarint(UInt64(keyValueSize))
        writeProtobufStringField(1, key)  // KeyValue.key
        writeProtobufKey(2, .lengthDelimited)  // KeyValue.value
        writeProtobufVarint(UInt64(anyValueSize))
    }
}
