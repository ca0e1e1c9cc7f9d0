#if canImport(Glibc)
import Glibc
#endif
import MeshHTTP1
import NIOCore
import NIOHTTP1

/// What one access-log line says about a finished request. Field names are
/// snake_case, absent values are JSON `null`, so every line has the same keys.
struct AccessLogEntry {
    /// Wall-clock start, nanoseconds since the Unix epoch.
    var startNanoseconds: Int64
    var durationNanoseconds: Int64
    var listener: String
    var httpProtocol: String
    var method: String
    var authority: String?
    var path: String
    var status: Int?
    var grpcStatus: Int?
    var cluster: String?
    var endpoint: String?
    var attempts: Int
    var bytesReceived: Int
    var bytesSent: Int
    var caller: String?
    var traceID: String?
    var requestID: String
    var proxyError: String?
    /// What the proxy did to the request (`RequestFlags`), as an array of names.
    var flags = RequestFlags()

    /// Appends the line. Numbers and the timestamp are written digit by
    /// digit, without building strings: the line is on the request path.
    func encode(into buffer: inout ByteBuffer, clock: inout AccessLogClock) {
        buffer.writeStaticString("{\"start_time\":\"")
        clock.writeTimestamp(startNanoseconds, into: &buffer)
        buffer.writeStaticString("\",\"duration_ms\":")
        let micros = max(0, durationNanoseconds / 1000)
        Self.writeDecimal(Int(micros / 1000), into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        Self.writeDecimal(Int(micros % 1000), minimumDigits: 3, into: &buffer)
        field(",\"listener\":", listener, into: &buffer)
        field(",\"protocol\":", httpProtocol, into: &buffer)
        field(",\"method\":", method, into: &buffer)
        field(",\"authority\":", authority, into: &buffer)
        field(",\"path\":", path, into: &buffer)
        field(",\"status\":", status, into: &buffer)
        field(",\"grpc_status\":", grpcStatus, into: &buffer)
        field(",\"cluster\":", cluster, into: &buffer)
        field(",\"endpoint\":", endpoint, into: &buffer)
        field(",\"attempts\":", attempts, into: &buffer)
        field(",\"bytes_received\":", bytesReceived, into: &buffer)
        field(",\"bytes_sent\":", bytesSent, into: &buffer)
        field(",\"caller\":", caller, into: &buffer)
        field(",\"trace_id\":", traceID, into: &buffer)
        field(",\"request_id\":", requestID, into: &buffer)
        field(",\"proxy_error\":", proxyError, into: &buffer)
        buffer.writeStaticString(",\"flags\":[")
        if !flags.isEmpty {
            var first = true
            for (flag, name) in RequestFlags.named where flags.contains(flag) {
                if !first {
                    buffer.writeInteger(UInt8(ascii: ","))
                }
                first = false
                buffer.writeInteger(UInt8(ascii: "\""))
                buffer.writeString(name)
                buffer.writeInteger(UInt8(ascii: "\""))
            }
        }
        buffer.writeStaticString("]}\n")
    }

    /// `key` is the whole `,"name":`, written in one go: a line has sixteen of them.
    private func field(_ key: StaticString, _ value: String?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(key)
        guard let value else {
            buffer.writeStaticString("null")
            return
        }
        Self.writeJSONString(value, into: &buffer)
    }

    private func field(_ key: StaticString, _ value: Int?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(key)
        if let value {
            Self.writeDecimal(value, into: &buffer)
        } else {
            buffer.writeStaticString("null")
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped
    /// (RFC 8259 section 7), so a hostile path cannot break the line.
    static func writeJSONString(_ value: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        // Most values need no escape: one copy, not a write per byte.
        guard value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
        else {
            buffer.writeString(value)
            buffer.writeInteger(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// `value` in decimal, zero-padded to `minimumDigits`.
    static func writeDecimal(_ value: Int, minimumDigits: Int = 1, into buffer: inout ByteBuffer) {
        if value < 0 {
            buffer.writeInteger(UInt8(ascii: "-"))
        }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { space in
            var start = space.count
            repeat {
                start -= 1
                space[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0 || space.count - start < minimumDigits
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: space[start...]))
        }
    }

    /// The trace a request belongs to, from W3C `traceparent`
    /// (`00-<32 hex>-<16 hex>-<2 hex>`) or B3 (`x-b3-traceid`, or the single `b3` header).
    static func traceID(traceparent: String?, b3TraceID: String?, b3: String?) -> String? {
        if let traceparent {
            let parts = traceparent.split(separator: "-")
            if parts.count >= 4, parts[1].utf8.count == 32 { return String(parts[1]) }
        }
        if let b3TraceID, !b3TraceID.isEmpty { return b3TraceID }
        if let b3, let first = b3.split(separator: "-").first, first.utf8.count == 16 || first.utf8.count == 32 {
            return String(first)
        }
        return nil
    }
}

/// What an exchange picked for the access log gathers while it runs: only
/// requests the sample chose carry one, so the others pay nothing but a nil check.
struct AccessLogDraft {
    let startNanoseconds: Int64
    let method: String
    let authority: String?
    let path: String
    let traceID: String?

    init(head: HTTPRequestHead) {
        startNanoseconds = WallClock.nanoseconds()
        method = head.method.rawValue
        path = head.uri
        // One pass over the fields, by name length first, for the four it needs.
        var host: String?
        var traceparent: String?
        var b3TraceID: String?
        var b3: String?
        for (name, value) in head.headers {
            switch name.utf8.count {
            case 2 where b3 == nil && name.equalsIgnoringASCIICase("b3"): b3 = value
            case 4 where host == nil && name.equalsIgnoringASCIICase("host"): host = value
            case 11 where traceparent == nil && name.equalsIgnoringASCIICase("traceparent"): traceparent = value
            case 12 where b3TraceID == nil && name.equalsIgnoringASCIICase("x-b3-traceid"): b3TraceID = value
            default: break
            }
        }
        authority = host
        traceID = AccessLogEntry.traceID(traceparent: traceparent, b3TraceID: b3TraceID, b3: b3)
    }
}

/// Formats start times, RFC 3339 in UTC with milliseconds
/// (`2026-12-01T21:40:05.123Z`). The part up to the second changes once a
/// second, so it is formatted once and kept.
struct AccessLogClock {
    private var second: Int64 = -1
    private var prefix: [UInt8] = []

    mutating func writeTimestamp(_ nanoseconds: Int64, into buffer: inout ByteBuffer) {
        let thisSecond = nanoseconds / 1_000_000_000
        if thisSecond != second {
            second = thisSecond
            var seconds = time_t(thisSecond)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            var text = ByteBuffer()
            AccessLogEntry.writeDecimal(Int(parts.tm_year) + 1900, minimumDigits: 4, into: &text)
            for (separator, value) in [("-", parts.tm_mon + 1), ("-", parts.tm_mday), ("T", parts.tm_hour),
                                       (":", parts.tm_min), (":", parts.tm_sec)] {
                text.writeString(separator)
                AccessLogEntry.writeDecimal(Int(value), minimumDigits: 2, into: &text)
            }
            text.writeString(".")
            prefix = Array(text.readableBytesView)
        }
        buffer.writeBytes(prefix)
        AccessLogEntry.writeDecimal(Int(nanoseconds / 1_000_000 % 1000), minimumDigits: 3, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }
}
