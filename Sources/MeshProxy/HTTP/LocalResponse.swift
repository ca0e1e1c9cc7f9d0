import MeshConfig
import NIOCore
import NIOHTTP1

/// The command that tells a user what happened to a request this proxy
/// answered itself, named in the answer next to the request id.
enum ExplainHint: Sendable, Equatable {
    /// `swiftmesh explain ID`: the control plane asks every sidecar (a sidecar's proxy).
    case controlPlane
    /// `swiftmesh explain ID --proxy ADMIN`: this proxy's admin listener (a standalone proxy).
    case adminListener(HostPort)

    func command(for requestID: String) -> String {
        switch self {
        case .controlPlane:
            return "swiftmesh explain \(requestID)"
        case .adminListener(let admin):
            // A listener on every address is called on loopback.
            let host = switch admin.host {
            case "0.0.0.0": "127.0.0.1"
            case "::": "::1"
            default: admin.host
            }
            return "swiftmesh explain \(requestID) --proxy \(HostPort(host: host, port: admin.port))"
        }
    }
}

/// Builds the responses the proxy makes itself. gRPC callers get what a gRPC
/// server would send (HTTP 200, trailers-only, `grpc-status`); everyone else
/// the HTTP status with a one-line text body. Both say why in
/// `swiftmesh-proxy-error` and carry the request id.
enum LocalResponse {
    static let proxyErrorHeader = "swiftmesh-proxy-error"

    /// The response for `error`: a head, an optional body and optional trailers.
    /// gRPC callers get headers then trailers carrying `grpc-status`, the shape
    /// every gRPC client reads a status from (an empty DATA frame between them
    /// would be read as a malformed response).
    /// `explainHint`: how the request can be explained, if at all (a proxy without an admin listener keeps no records to ask).
    static func parts(
        for error: ProxyError,
        isGRPC: Bool,
        requestID: String?,
        explainHint: ExplainHint?,
        allocator: ByteBufferAllocator
    ) -> (head: HTTPResponseHead, body: ByteBuffer?, trailers: HTTPHeaders?) {
        var headers = HTTPHeaders()
        headers.add(name: proxyErrorHeader, value: error.reason)
        if let requestID {
            headers.add(name: HeaderHygiene.requestIDHeader, value: requestID)
        }
        if isGRPC {
            headers.add(name: "content-type", value: "application/grpc")
            return (HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), nil,
                    grpcTrailers(for: error, requestID: requestID, explainHint: explainHint))
        }
        let text = error.message + requestNote(requestID, explainHint) + "\n"
        var body = allocator.buffer(capacity: text.utf8.count)
        body.writeString(text)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.readableBytes))
        return (HTTPResponseHead(version: .http1_1, status: error.httpStatus, headers: headers), body, nil)
    }

    /// The trailers that end a gRPC response whose headers already went out,
    /// so the caller sees a status instead of a broken stream.
    static func grpcTrailers(for error: ProxyError, requestID: String?, explainHint: ExplainHint?) -> HTTPHeaders {
        var trailers = HTTPHeaders()
        trailers.add(name: "grpc-status", value: String(error.grpcStatus.rawValue))
        trailers.add(
            name: "grpc-message", value: percentEncodedGRPCMessage(error.message + requestNote(requestID, explainHint)))
        trailers.add(name: proxyErrorHeader, value: error.reason)
        return trailers
    }

    /// Where the message leads: the command that tells what happened to the request.
    private static func requestNote(_ requestID: String?, _ explainHint: ExplainHint?) -> String {
        guard let requestID else { return "" }
        return explainHint.map { " (request id \(requestID): \($0.command(for: requestID)))" } ?? " (request id \(requestID))"
    }

    /// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec): bytes outside
    /// printable ASCII, and `%` itself, become `%XX`.
    static func percentEncodedGRPCMessage(_ message: String) -> String {
        var out = ""
        out.reserveCapacity(message.utf8.count)
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%"
                out += String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
