import NIOCore

/// The two messages of `grpc.health.v1.Health/Check`, written and read by
/// hand: each is one protobuf field, too small to need generated code.
///   message HealthCheckRequest { string service = 1; }
///   message HealthCheckResponse { ServingStatus status = 1; }  // SERVING = 1
enum GRPCHealthMessages {
    static let checkPath = "/grpc.health.v1.Health/Check"
    static let serving: UInt64 = 1

    /// A length-prefixed gRPC message carrying the request.
    static func checkRequest(service: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var message = allocator.buffer(capacity: service.utf8.count + 8)
        if !service.isEmpty {
            message.writeInteger(UInt8(0x0A))  // field 1, length-delimited
            writeVarint(UInt64(service.utf8.count), to: &message)
            message.writeString(service)
        }
        var framed = allocator.buffer(capacity: message.readableBytes + 5)
        framed.writeInteger(UInt8(0))  // not compressed
        framed.writeInteger(UInt32(message.readableBytes))
        framed.writeBuffer(&message)
        return framed
    }

    /// Whether a length-prefixed response message says SERVING.
    static func isServing(_ framed: ByteBuffer) -> Bool {
        var buffer = framed
        guard buffer.readInteger(as: UInt8.self) == 0, let length = buffer.readInteger(as: UInt32.self),
              var message = buffer.readSlice(length: Int(length)) else { return false }
        var status: UInt64 = 0
        while message.readableBytes > 0 {
            guard let key = readVarint(from: &message) else { return false }
            switch key & 0x7 {
            case 0:
                guard let value = readVarint(from: &message) else { return false }
                if key >> 3 == 1 {
                    status = value
                }
            case 2:
                guard let size = readVarint(from: &message), message.readSlice(length: Int(size)) != nil else { return false }
            default:
                // Fixed-width fields never appear in these messages; stop rather than misread.
                return false
            }
        }
        return status == serving
    }

    private static func writeVarint(_ value: UInt64, to buffer: inout ByteBuffer) {
        var rest = value
        while rest >= 0x80 {
            buffer.writeInteger(UInt8(rest & 0x7F | 0x80))
            rest >>= 7
        }
        buffer.writeInteger(UInt8(rest))
    }

    private static func readVarint(from buffer: inout ByteBuffer) -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte < 0x80 {
                return value
            }
        }
        return nil
    }
}
