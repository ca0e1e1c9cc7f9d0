import MeshConfig
import MeshHTTP1

/// Reads a request's path the way the app behind will, before routes and
/// authorization decide on it, and gives the path to forward, so that the
/// proxy and the app agree on what was asked (RFC 3986 section 6, as
/// Envoy's `normalize_path`):
/// - percent-encoded unreserved characters are decoded (`%61` is `a`),
///   other escapes upper-cased (`%3a` is `%3A`), a broken escape refused;
/// - `.` and `..` segments are resolved, never above the root;
/// - `//` is read as `/` when `mergeSlashes`;
/// - `%2F` and `%5C` are refused, kept or decoded into `/` (`escapedSlashes`).
///
/// Refused outright, as no reading of them is safe: a backslash (some apps
/// read it as `/`), a fragment (`#`, never part of a request target), a
/// dot segment that was percent-encoded (`%2E%2E`), a dot segment with
/// parameters (`..;x`, which servlet containers resolve as `..`), and a
/// segment of parameters only (`/;x/admin`, which they read as `//admin`).
///
/// Path parameters (`;` in a segment, `/admin;x=1/y`) are forwarded, but
/// routes and authorization decide on the path without them (`/admin/y`),
/// as servlet containers read it: a rule for `/admin/*` holds either way.
///
/// The query is left as it is. A path with none of `%`, `\`, `;`, a
/// `.` segment or (when merging) `//` (nearly every path) is scanned once
/// and not copied.
struct PathNormalizer: Sendable {
    enum Outcome: Equatable {
        /// `target` is the request target to forward (nil: the one sent,
        /// unchanged); `path` is what routes and authorization decide on
        /// (the target's path without `;` parameters).
        case accepted(target: String?, path: Substring)
        /// Why the request is refused (a 400).
        case rejected(String)
    }

    let config: PathNormalizationConfig

    /// With normalization off, a listener with authorization decides on
    /// paths as sent; it refuses those this normalizer would read otherwise
    /// or refuse, since the app behind may read them so.
    static let strict = PathNormalizer(config: PathNormalizationConfig(escapedSlashes: .reject))

    /// Whether the target reads the same normalized as sent, parameters included.
    func readsAsSent(_ target: String) -> Bool {
        guard case .accepted(nil, let path) = normalize(target: target) else { return false }
        return path.utf8.elementsEqual(RouteMatcher.path(ofTarget: target).utf8)
    }

    /// The origin-form target (`/path?query`) normalized; `*` and anything
    /// not starting with `/` pass as they are.
    func normalize(target: String) -> Outcome {
        let utf8 = target.utf8
        guard utf8.first == UInt8(ascii: "/") else {
            return .accepted(target: nil, path: RouteMatcher.path(ofTarget: target))
        }
        // One pass over the target's contiguous bytes (a native string's
        // always are) finds the query, a fragment and what needs work.
        let found = utf8.withContiguousStorageIfAvailable { scan($0) } ?? scan(Array(utf8))
        if found.hasFragment {
            return .rejected("a fragment (#) in the request target")
        }
        let pathEnd = found.pathLength == utf8.count
            ? utf8.endIndex : utf8.index(utf8.startIndex, offsetBy: found.pathLength)
        guard found.needsWork else {
            return .accepted(target: nil, path: target[target.startIndex..<pathEnd])
        }
        let path = utf8[utf8.startIndex..<pathEnd]
        let result: Result<(forwarded: [UInt8], matched: [UInt8]?), Rejection>
        result = Self.rewrite(Array(path), config)
        switch result {
        case .failure(let rejection):
            return .rejected(rejection.reason)
        case .success(let (forwarded, matched)):
            let matchPath = matched.map { Substring(String(decoding: $0, as: UTF8.self)) }
            if forwarded.elementsEqual(path) {
                // Normalized already (`%20`, `/a;p`): forwarded as sent.
                return .accepted(target: nil, path: matchPath ?? target[target.startIndex..<pathEnd])
            }
            var newTarget = String(decoding: forwarded, as: UTF8.self)
            let newPath = matchPath ?? Substring(newTarget)
            newTarget += target[pathEnd...]
            return .accepted(target: newTarget, path: newPath)
        }
    }

    private struct Scan {
        /// Bytes before the query (`?`), or all of them.
        var pathLength: Int
        var hasFragment = false
        /// The path holds anything normalization could change or refuse.
        var needsWork = false
    }

    private func scan(_ bytes: some RandomAccessCollection<UInt8>) -> Scan {
        var result = Scan(pathLength: bytes.count)
        var inPath = true
        var previous: UInt8 = 0
        var offset = 0
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "#") {
                result.hasFragment = true
                return result
            }
            if inPath {
                switch byte {
                case UInt8(ascii: "?"):
                    inPath = false
                    result.pathLength = offset
                case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: ";"):
                    result.needsWork = true
                case UInt8(ascii: "/") where previous == UInt8(ascii: "/") && config.mergeSlashes:
                    result.needsWork = true
                case UInt8(ascii: ".") where previous == UInt8(ascii: "/"):
                    // `/.` starts a dot segment unless more than dots follow.
                    var end = bytes.index(after: index)
                    var dots = 1
                    while end != bytes.endIndex, bytes[end] == UInt8(ascii: "."), dots < 3 {
                        dots += 1
                        end = bytes.index(after: end)
                    }
                    if dots <= 2 && (end == bytes.endIndex || bytes[end] == UInt8(ascii: "/") || bytes[end] == UInt8(ascii: "?")) {
                        result.needsWork = true
                    }
                default:
                    break
                }
            }
            previous = byte
            offset += 1
            index = bytes.index(after: index)
        }
        return result
    }

    struct Rejection: Error {
        var reason: String
    }

    /// One segment of the path as read: its bytes as forwarded and, when it
    /// has parameters, its name without them.
    private struct Segment {
        var bytes: [UInt8]
        /// Length of the name before `;`; nil: no parameters.
        var nameLength: Int?
        var name: ArraySlice<UInt8> { bytes[..<(nameLength ?? bytes.count)] }
    }

    /// The normalized path, and the path without segment parameters when it differs.
    private static func rewrite(_ path: [UInt8], _ config: PathNormalizationConfig)
        -> Result<(forwarded: [UInt8], matched: [UInt8]?), Rejection> {
        let path = config.escapedSlashes == .unescape ? unescapingSlashes(path) : path
        var output: [Segment] = []
        // Whether the path ends in a directory (`/`, or a dot segment resolved at the end).
        var endsWithSlash = false
        var hasParameters = false
        var start = 1  // after the leading `/`
        while start <= path.count {
            let end = path[start...].firstIndex(of: UInt8(ascii: "/")) ?? path.count
            let raw = path[start..<end]
            start = end + 1
            var decoded: [UInt8] = []
            decoded.reserveCapacity(raw.count)
            var wasEncoded = false
            var nameLength: Int?
            var index = raw.startIndex
            while index < raw.endIndex {
                let byte = raw[index]
                if byte == UInt8(ascii: "\\") {
                    return .failure(Rejection(reason: "a backslash in the path"))
                }
                if byte == UInt8(ascii: ";") && nameLength == nil {
                    nameLength = decoded.count
                }
                guard byte == UInt8(ascii: "%") else {
                    decoded.append(byte)
                    index += 1
                    continue
                }
                guard index + 2 < raw.endIndex, let high = raw[index + 1].hexDigitValue, let low = raw[index + 2].hexDigitValue
                else {
                    return .failure(Rejection(reason: "a broken percent-encoding in the path"))
                }
                let value = UInt8(high << 4 | low)
                index += 3
                if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") {
                    // Still encoded: `unescapingSlashes` decoded them already otherwise.
                    guard config.escapedSlashes == .keep else {
                        return .failure(Rejection(reason: "a percent-encoded slash or backslash in the path"))
                    }
                } else if isUnreserved(value) {
                    wasEncoded = true
                    decoded.append(value)
                    continue
                }
                decoded.append(UInt8(ascii: "%"))
                decoded.append(hexDigit(value >> 4))
                decoded.append(hexDigit(value & 0xF))
            }
            hasParameters = hasParameters || nameLength != nil
            if nameLength == 0 {
                // `/;x/admin`: servlet containers drop the segment, and what
                // is left (`//admin`) is not the path a rule would see.
                return .failure(Rejection(reason: "a path segment that is only parameters (/;x) in the path"))
            }
            let segment = Segment(bytes: decoded, nameLength: nameLength)
            let isDot = segment.name.elementsEqual([UInt8(ascii: ".")])
            let isDotDot = segment.name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
            if isDot || isDotDot {
                if nameLength != nil {
                    return .failure(Rejection(reason: "a dot segment with parameters (..;) in the path"))
                }
                if wasEncoded {
                    return .failure(Rejection(reason: "a percent-encoded dot segment in the path"))
                }
                if isDotDot, !output.isEmpty {
                    output.removeLast()
                }
                endsWithSlash = true
            } else if decoded.isEmpty {
                // The empty segment after a trailing `/`, or one of `//`.
                if end == path.count {
                    endsWithSlash = true
                } else if !config.mergeSlashes {
                    output.append(segment)
                }
            } else {
                endsWithSlash = false
                output.append(segment)
            }
        }
        return .success(join(output, endsWithSlash: endsWithSlash, hasParameters: hasParameters))
    }

    /// `%2F` and `%5C` (either case) decoded into `/`.
    private static func unescapingSlashes(_ path: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(path.count)
        var index = 0
        while index < path.count {
            if path[index] == UInt8(ascii: "%"), index + 2 < path.count,
               (path[index + 1] == UInt8(ascii: "2") && path[index + 2] | 0x20 == UInt8(ascii: "f"))
                || (path[index + 1] == UInt8(ascii: "5") && path[index + 2] | 0x20 == UInt8(ascii: "c")) {
                result.append(UInt8(ascii: "/"))
                index += 3
            } else {
                result.append(path[index])
                index += 1
            }
        }
        return result
    }

    private static func join(_ segments: [Segment], endsWithSlash: Bool, hasParameters: Bool)
        -> (forwarded: [UInt8], matched: [UInt8]?) {
        func build(_ part: (Segment) -> ArraySlice<UInt8>) -> [UInt8] {
            var bytes: [UInt8] = []
            for segment in segments {
                bytes.append(UInt8(ascii: "/"))
                bytes.append(contentsOf: part(segment))
            }
            if bytes.isEmpty || endsWithSlash {
                bytes.append(UInt8(ascii: "/"))
            }
            return bytes
        }
        return (build { $0.bytes[...] }, hasParameters ? build { $0.name } : nil)
    }

    /// RFC 3986 section 2.3: ALPHA, DIGIT, `-`, `.`, `_`, `~`.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"):
            true
        default:
            false
        }
    }


    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }
}
