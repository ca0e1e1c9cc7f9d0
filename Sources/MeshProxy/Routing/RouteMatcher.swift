import MeshConfig
import NIOHTTP1

/// A route's match conditions, precompiled from `RouteMatch` so that matching
/// a request compares bytes and allocates nothing. Bytes, not characters:
/// Swift's `==` and `hasPrefix` compare by Unicode canonical equivalence, so
/// `/admin/` would not be a prefix of `/admin/\u{0337}x` (the slash and the
/// combining mark are one character), while an app matching bytes serves it.
struct RouteMatcher: Sendable {
    enum PathCondition: Sendable {
        case any
        case exact(String)
        case prefix(String)
    }

    let path: PathCondition
    /// Upper-case method names; nil accepts every method.
    let methods: [String]?
    let headers: [HeaderMatch]

    init(_ match: RouteMatch) {
        if let grpc = match.grpc {
            // gRPC calls are POSTs to /<package.Service>/<Method>.
            if let method = grpc.method {
                path = .exact("/\(grpc.service)/\(method)")
            } else {
                path = .prefix("/\(grpc.service)/")
            }
        } else if let exact = match.path {
            path = .exact(exact)
        } else if let prefix = match.pathPrefix, prefix != "/" {
            path = .prefix(prefix)
        } else {
            path = .any
        }
        methods = match.methods
        headers = match.headers
    }

    func matches(method: HTTPMethod, path requestPath: Substring, headers requestHeaders: HTTPHeaders) -> Bool {
        switch path {
        case .any:
            break
        case .exact(let expected):
            guard requestPath.utf8.elementsEqual(expected.utf8) else { return false }
        case .prefix(let prefix):
            guard requestPath.utf8.starts(with: prefix.utf8) else { return false }
        }
        if let methods, !methods.contains(method.rawValue) {
            return false
        }
        for condition in headers where !Self.holds(condition, in: requestHeaders) {
            return false
        }
        return true
    }

    private static func holds(_ match: HeaderMatch, in headers: HTTPHeaders) -> Bool {
        switch match.condition {
        case .present(let expected):
            return headers.contains(name: match.name) == expected
        case .exact(let value):
            return headers[match.name].contains { $0.utf8.elementsEqual(value.utf8) }
        case .prefix(let prefix):
            return headers[match.name].contains { $0.utf8.starts(with: prefix.utf8) }
        }
    }

    /// The path of a request target without its query: origin form
    /// (`/a/b?q`) or absolute form (`http://host/a/b?q`, sent to proxies).
    static func path(ofTarget target: String) -> Substring {
        // Over UTF-8 bytes: every delimiter is ASCII, and byte scans skip the
        // grapheme breaking that Character operations pay for.
        let bytes = target.utf8
        var start = bytes.startIndex
        if bytes.first != UInt8(ascii: "/") {
            guard let authority = authorityStart(in: bytes) else { return target[...] }
            guard let slash = bytes[authority...].firstIndex(of: UInt8(ascii: "/")) else { return "/" }
            start = slash
        }
        let end = bytes[start...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.endIndex
        return target[start..<end]
    }

    /// Where the authority of an absolute-form target begins: after `://`.
    private static func authorityStart(in bytes: String.UTF8View) -> String.Index? {
        var index = bytes.startIndex
        while let colon = bytes[index...].firstIndex(of: UInt8(ascii: ":")) {
            let afterColon = bytes.index(after: colon)
            if bytes[afterColon...].starts(with: "//".utf8) {
                return bytes.index(afterColon, offsetBy: 2)
            }
            index = afterColon
        }
        return nil
    }
}
