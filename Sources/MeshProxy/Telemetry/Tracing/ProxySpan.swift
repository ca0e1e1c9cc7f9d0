import MeshConfig
import NIOCore

/// A finished request as an OTLP span (trace.proto `Span`), named and
/// attributed by the OpenTelemetry semantic conventions for HTTP and, for
/// gRPC, RPC. A sidecar's inbound listener makes server spans, every
/// other listener client spans: the proxy calls the endpoint on its caller's behalf.
struct ProxySpan {
    var context: ProxySpanContext
    var direction: TrafficDirection
    /// Wall clock, nanoseconds since the Unix epoch.
    var startNanoseconds: Int64
    var endNanoseconds: Int64
    var method: String
    /// The request target as sent: the path and any query.
    var target: String
    var authority: String?
    var isHTTP2: Bool
    var isTLS: Bool
    var isGRPC: Bool
    /// nil when the client left before a response head.
    var status: Int?
    var grpcStatus: Int?
    var listener: String
    var cluster: String?
    var endpoint: String?
    var attempts: Int
    var requestID: String
    var proxyError: String?
    /// The caller's mesh identity (its SPIFFE ID).
    var caller: String?
    var clientIP: String?

    /// Values the client chose (path, authority, request id) are cut to this
    /// many bytes, so one span cannot swell a batch past receivers' limits.
    static let maxValueBytes = 512

    /// OTLP `Span.SpanKind`.
    private var kind: UInt64 { direction == .inbound ? 2 : 3 }

    /// gRPC statuses a server reports as its own failure (the semantic
    /// conventions' list); a client counts every status but OK.
    private static let serverFailureGRPCStatuses: Set<Int> = [2, 4, 12, 13, 14, 15]

    /// Why the span failed, or nil when it did not.
    var failure: String? {
        if let proxyError { return proxyError }
        if isGRPC, let grpcStatus, grpcStatus != 0,
           direction == .outbound || Self.serverFailureGRPCStatuses.contains(grpcStatus) {
            return "grpc_status_\(grpcStatus)"
        }
        if let status, status >= 500 || direction == .outbound && status >= 400 {
            return String(status)
        }
        return nil
    }

    /// The target without its query. Slicing works on UTF-8 throughout:
    /// Character-wise walks cost more than the rest of the encoding together.
    var path: Substring {
        target[..<(target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)]
    }

    /// gRPC: `package.Service/Method`; HTTP: the method (the proxy knows no route templates).
    var name: Substring {
        isGRPC ? Self.cut(path.utf8.first == UInt8(ascii: "/") ? path.dropFirst() : path) : Substring(method)
    }

    /// `value` cut to `maxValueBytes`, before a scalar's first byte so that
    /// the span stays valid UTF-8.
    private static func cut(_ value: Substring) -> Substring {
        let bytes = value.utf8
        guard bytes.count > maxValueBytes else { return value }
        var end = bytes.index(bytes.startIndex, offsetBy: maxValueBytes)
        while end > bytes.startIndex, bytes[end] & 0xC0 == 0x80 {  // a continuation byte
            end = bytes.index(before: end)
        }
        return value[..<end]
    }

    /// Appends the span as a `ScopeSpans.spans` entry (field 2); `scratch`
    /// is reused between spans so that encoding allocates nothing once warm.
    func encode(into spans: inout ByteBuffer, scratch: inout ByteBuffer) {
        scratch.clear()
        scratch.writeProtobufLengthDelimitedHeader(1, length: 16)  // trace_id
        context.traceID.write(into: &scratch)
        scratch.writeProtobufLengthDelimitedHeader(2, length: 8)  // span_id
        scratch.writeInteger(context.spanID, endianness: .big)
        if let parent = context.parentSpanID {
            scratch.writeProtobufLengthDelimitedHeader(4, length: 8)  // parent_span_id
            scratch.writeInteger(parent, endianness: .big)
        }
        let path = self.path
        let name = self.name
        scratch.writeProtobufStringField(5, name)
        scratch.writeProtobufVarintField(6, kind)
        scratch.writeProtobufFixed64Field(7, UInt64(max(0, startNanoseconds)))
        scratch.writeProtobufFixed64Field(8, UInt64(max(0, endNanoseconds)))
        let failure = self.failure
        writeAttributes(into: &scratch, path: path, name: name, failure: failure)
        if let failure {
            // Status { message = 2, code = 3 (STATUS_CODE_ERROR = 2) }
            let size = ByteBuffer.protobufFieldSize(failure.utf8.count) + 2
            scratch.writeProtobufLengthDelimitedHeader(15, length: size)
            scratch.writeProtobufStringField(2, failure)
            scratch.writeProtobufVarintField(3, 2)
        }
        spans.writeProtobufMessageField(2, scratch)
    }

    /// `Span.attributes` (field 9).
    private func writeAttributes(into buffer: inout ByteBuffer, path: Substring, name: Substring, failure: String?) {
        buffer.writeOTLPAttribute(9, key: "http.request.method", value: method)
        buffer.writeOTLPAttribute(9, key: "url.path", value: Self.cut(path))
        buffer.writeOTLPAttribute(9, key: "url.scheme", value: isTLS ? "https" : "http")
        if let authority {
            let (host, port) = Self.split(authority)
            buffer.writeOTLPAttribute(9, key: "server.address", value: Self.cut(host))
            if let port {
                buffer.writeOTLPAttribute(9, key: "server.port", value: port)
            }
        }
        buffer.writeOTLPAttribute(9, key: "network.protocol.version", value: isHTTP2 ? "2" : "1.1")
        if let status {
            buffer.writeOTLPAttribute(9, key: "http.response.status_code", value: status)
        }
        if direction == .outbound, let endpoint {
            let (host, port) = Self.split(endpoint)
            buffer.writeOTLPAttribute(9, key: "network.peer.address", value: host)
            if let port {
                buffer.writeOTLPAttribute(9, key: "network.peer.port", value: port)
            }
        }
        if direction == .inbound, let clientIP {
            buffer.writeOTLPAttribute(9, key: "client.address", value: clientIP)
        }
        if isGRPC {
            buffer.writeOTLPAttribute(9, key: "rpc.system", value: "grpc")
            if let slash = name.utf8.firstIndex(of: UInt8(ascii: "/")) {
                buffer.writeOTLPAttribute(9, key: "rpc.service", value: name[..<slash])
                buffer.writeOTLPAttribute(9, key: "rpc.method", value: name[name.utf8.index(after: slash)...])
            }
            if let grpcStatus {
                buffer.writeOTLPAttribute(9, key: "rpc.grpc.status_code", value: grpcStatus)
            }
        }
        if let failure {
            buffer.writeOTLPAttribute(9, key: "error.type", value: failure)
        }
        buffer.writeOTLPAttribute(9, key: "swiftmesh.listener", value: listener)
        if let cluster {
            buffer.writeOTLPAttribute(9, key: "swiftmesh.cluster", value: cluster)
        }
        if let endpoint {
            buffer.writeOTLPAttribute(9, key: "swiftmesh.endpoint", value: endpoint)
        }
        buffer.writeOTLPAttribute(9, key: "swiftmesh.attempts", value: attempts)
        buffer.writeOTLPAttribute(9, key: "swiftmesh.request_id", value: Self.cut(Substring(requestID)))
        if let caller {
            buffer.writeOTLPAttribute(9, key: "swiftmesh.caller", value: caller)
        }
    }

    /// `host:port`, `[v6]:port` or a bare host.
    private static func split(_ authority: String) -> (host: Substring, port: Int?) {
        let bytes = authority.utf8
        guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")), bytes.last != UInt8(ascii: "]"),
              let port = Int(authority[bytes.index(after: colon)...]) else {
            return (Substring(authority), nil)
        }
        var host = authority[..<colon]
        if host.utf8.first == UInt8(ascii: "["), host.utf8.last == UInt8(ascii: "]") {
            host = host.dropFirst().dropLast()
        }
        return (host, port)
    }
}
