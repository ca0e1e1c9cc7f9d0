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

    /// One reservation and raw stores, not a ByteBuffer write per byte.
    mutating func writeProtobufVarint(_ value: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 10) { space in
            var writer = RawProtobufWriter(space: space)
            writer.varint(value)
            return writer.index
        }
    }

    /// A length-delimited field's key and length in one write: the two
    /// precede every string, attribute and nested message of a span.
    mutating func writeProtobufLengthDelimitedHeader(_ field: Int, length: Int) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 11) { space in
            var writer = RawProtobufWriter(space: space)
            writer.lengthDelimitedHeader(field, length: length)
            return writer.index
        }
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

    mutating func writeProtobufStringField(_ field: Int, _ value: some StringProtocol) {
        writeProtobufLengthDelimitedHeader(field, length: value.utf8.count)
        writeBytes(value.utf8)
    }

    /// A nested message (or bytes) already encoded in `message`.
    mutating func writeProtobufMessageField(_ field: Int, _ message: ByteBuffer) {
        writeProtobufLengthDelimitedHeader(field, length: message.readableBytes)
        writeImmutableBuffer(message)
    }

    /// An OTLP `KeyValue` (common.proto) with a string value, at `field`.
    /// Each attribute is one reservation and raw stores: ByteBuffer's
    /// per-call checks cost more than the bytes when a span has twenty.
    mutating func writeOTLPAttribute(_ field: Int, key: String, value: some StringProtocol) {
        let valueSize = value.utf8.count
        let anyValueSize = Self.protobufFieldSize(valueSize)  // AnyValue.string_value
        writeOTLPKeyValue(field, key: key, anyValueSize: anyValueSize) { writer in
            writer.lengthDelimitedHeader(1, length: valueSize)
            writer.copy(value.utf8)
        }
    }

    /// An OTLP `KeyValue` with an integer value.
    mutating func writeOTLPAttribute(_ field: Int, key: String, value: Int) {
        let encoded = UInt64(bitPattern: Int64(value))
        writeOTLPKeyValue(field, key: key, anyValueSize: 1 + Self.protobufVarintSize(encoded)) { writer in
            writer.put(UInt8(3 << 3) | WireType.varint.rawValue)  // AnyValue.int_value
            writer.varint(encoded)
        }
    }

    /// A length-delimited field of `size` bytes: its one-byte key, its length, the bytes.
    static func protobufFieldSize(_ size: Int) -> Int {
        1 + protobufVarintSize(UInt64(size)) + size
    }

    private mutating func writeOTLPKeyValue(
        _ field: Int, key: String, anyValueSize: Int, value: (inout RawProtobufWriter) -> Void
    ) {
        let keySize = key.utf8.count
        let keyValueSize = Self.protobufFieldSize(keySize) + Self.protobufFieldSize(anyValueSize)
        let total = Self.protobufFieldSize(keyValueSize)
        writeWithUnsafeMutableBytes(minimumWritableBytes: total) { space in
            var writer = RawProtobufWriter(space: space)
            writer.lengthDelimitedHeader(field, length: keyValueSize)
            writer.lengthDelimitedHeader(1, length: keySize)  // KeyValue.key
            writer.copy(key.utf8)
            writer.lengthDelimitedHeader(2, length: anyValueSize)  // KeyValue.value
            value(&writer)
            assert(writer.index == total)
            return writer.index
        }
    }
}

/// Stores into space already reserved for exactly what is written.
struct RawProtobufWriter {
    let space: UnsafeMutableRawBufferPointer
    var index = 0

    mutating func put(_ byte: UInt8) {
        space[index] = byte
        index += 1
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            put(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        put(UInt8(value))
    }

    mutating func lengthDelimitedHeader(_ field: Int, length: Int) {
        assert(field < 16)
        put(UInt8(field << 3) | ByteBuffer.WireType.lengthDelimited.rawValue)
        varint(UInt64(length))
    }

    mutating func copy<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        let copied = bytes.withContiguousStorageIfAvailable { source in
            UnsafeMutableRawBufferPointer(rebasing: space[index...]).copyMemory(from: UnsafeRawBufferPointer(source))
            return source.count
        }
        if let copied {
            index += copied
        } else {
            for byte in bytes { put(byte) }
        }
    }
}
