import FuzzSupport
import MeshConfig

@testable import MeshProxy

// The path normalizer, on any request target a parser lets through, under
// every setting. Invariants, for a target it accepts:
// - normalizing what it forwards changes nothing and decides on the same path;
// - the path decided on starts with `/`, has no `.` or `..` segment, no
//   `;` parameters, no backslash, no escape of an unreserved character, and
//   no `//` when slashes merge;
// - it is the forwarded path with each segment's parameters removed;
// - the query goes on as sent.

/// RFC 3986 section 2.3.
func isUnreserved(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
         UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
         UInt8(ascii: "~"):
        true
    default:
        false
    }
}

func hex(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    default: nil
    }
}

func checkDecidedPath(_ path: String, merging: Bool) {
    let bytes = Array(path.utf8)
    require(bytes.first == UInt8(ascii: "/"), "\(path) does not start with /")
    require(!bytes.contains(UInt8(ascii: ";")) && !bytes.contains(UInt8(ascii: "\\")), "\(path) has ; or \\")
    // Split as bytes: a combining mark after `/` makes one character of them.
    let segments = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
    require(!segments.contains { $0.elementsEqual([46]) || $0.elementsEqual([46, 46]) }, "\(path) has a dot segment")
    if merging {
        require(!segments.dropLast().contains { $0.isEmpty }, "\(path) has an empty segment")
    }
    var index = 0
    while index + 2 < bytes.count {
        if bytes[index] == UInt8(ascii: "%"), let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
            require(!isUnreserved(high << 4 | low), "\(path) keeps an escape of an unreserved character")
        }
        index += 1
    }
}

/// The path of a forwarded target without each segment's `;` parameters.
func withoutParameters(_ path: Substring) -> [UInt8] {
    Array(path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        .map { $0.prefix { $0 != UInt8(ascii: ";") } }
        .joined(separator: [UInt8(ascii: "/")]))
}

@_cdecl("FuzzPathNormalizer_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { bytes in
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let rest = Array(input.bytes)
        // What the HTTP/1.1 parser and the HTTP/2 mapping let through: no
        // spaces or control characters; other bytes as the parsers decode them.
        guard !rest.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return }
        let target = "/" + String(decoding: rest, as: UTF8.self)
        let escaped: [PathNormalizationConfig.EscapedSlashes] = [.reject, .keep, .unescape]
        let config = PathNormalizationConfig(
            mergeSlashes: flags & 1 == 0, escapedSlashes: escaped[Int(flags >> 1) % 3])
        let normalizer = PathNormalizer(config: config)
        guard case .accepted(let rewritten, let path) = normalizer.normalize(target: target) else { return }
        let forwarded = rewritten ?? target
        let queryStart = { (text: String) in text.utf8.firstIndex(of: UInt8(ascii: "?")) ?? text.endIndex }
        require(forwarded[queryStart(forwarded)...].utf8.elementsEqual(target[queryStart(target)...].utf8),
                "the query changed: \(forwarded)")
        checkDecidedPath(String(path), merging: config.mergeSlashes)
        let forwardedPath = forwarded[forwarded.startIndex..<queryStart(forwarded)]
        require(withoutParameters(forwardedPath).elementsEqual(path.utf8), "\(path) is not \(forwardedPath) without parameters")
        guard case .accepted(let again, let againPath) = normalizer.normalize(target: forwarded) else {
            require(false, "\(target) forwarded as \(forwarded), which is refused")
            return
        }
        require(again == nil, "\(forwarded) normalizes again to \(again ?? "")")
        require(againPath.utf8.elementsEqual(path.utf8), "\(forwarded) decides on \(againPath), not \(path)")
    }
}
