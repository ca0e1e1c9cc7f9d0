import MeshConfig
import NIOHTTP1

/// A listener's authorization, compiled once per config: every caller
/// pattern is a glob over the full identity, every gRPC match an exact path
/// or a prefix. Deciding a request costs a few string comparisons and no
/// allocation.
struct ListenerAuthorization: Sendable {
    struct Rule: Sendable {
        let allows: Bool
        /// Globs over the caller's identity; nil: any caller, even one without an identity.
        let callers: [Glob]?
        /// Empty: any path.
        let paths: [PathPattern]
        /// Empty: any method.
        let methods: [HTTPMethod]
    }

    enum PathPattern: Sendable, Equatable {
        case exact(String)
        case prefix(String)

        /// Byte for byte: Swift's `==` and `hasPrefix` compare characters,
        /// and a combining mark after a `/` would make `/admin/` no prefix
        /// of a path an app reads as under `/admin/`.
        func matches(_ path: Substring) -> Bool {
            switch self {
            case .exact(let expected): path.utf8.elementsEqual(expected.utf8)
            case .prefix(let prefix): path.utf8.starts(with: prefix.utf8)
            }
        }
    }

    /// What decided a request: a rule (its index) or the default.
    struct Decision: Sendable, Equatable {
        var allowed: Bool
        var rule: Int?
    }

    let rules: [Rule]
    let defaultAllows: Bool

    init(_ config: AuthorizationConfig) {
        defaultAllows = config.defaultAction == .allow
        rules = config.rules.map { rule in
            let callers = rule.from.map { patterns in
                patterns.map { pattern in
                    // A service name (or a glob of them) stands for its identity in the trust domain.
                    Glob(pattern.hasPrefix("spiffe://") ? pattern : SPIFFEID.service(pattern, trustDomain: config.trustDomain))
                }
            }
            var paths = rule.paths.map { path -> PathPattern in
                path.hasSuffix("*") ? .prefix(String(path.dropLast())) : .exact(path)
            }
            if let grpc = rule.grpc {
                paths = grpc.methods.isEmpty
                    ? [.prefix("/\(grpc.service)/")]
                    : grpc.methods.map { .exact("/\(grpc.service)/\($0)") }
            }
            return Rule(allows: rule.action == .allow, callers: callers, paths: paths,
                        methods: rule.methods.map { HTTPMethod(rawValue: $0) })
        }
    }

    /// The first rule that matches decides; none: the default. `identity` is
    /// the caller's verified identity (nil: plaintext, or no certificate).
    func decide(identity: String?, method: HTTPMethod, path: Substring) -> Decision {
        for (index, rule) in rules.enumerated() {
            if let callers = rule.callers {
                guard let identity, callers.contains(where: { $0.matches(identity) }) else { continue }
            }
            if !rule.paths.isEmpty && !rule.paths.contains(where: { $0.matches(path) }) { continue }
            if !rule.methods.isEmpty && !rule.methods.contains(method) { continue }
            return Decision(allowed: rule.allows, rule: index)
        }
        return Decision(allowed: defaultAllows, rule: nil)
    }
}

/// A pattern where `*` matches any run of characters (including none), over UTF-8 bytes.
struct Glob: Sendable, Equatable {
    private let pattern: [UInt8]

    init(_ pattern: String) {
        self.pattern = Array(pattern.utf8)
    }

    func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches(bytes: $0) }
    }

    private func matches(bytes text: UnsafeBufferPointer<UInt8>) -> Bool {
        var p = 0, t = 0
        // Where the last `*` was, and the text position it is trying to absorb up to.
        var star: Int?
        var absorbed = 0
        while t < text.count {
            if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p
                absorbed = t
                p += 1
            } else if p < pattern.count && pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let star {
                p = star + 1
                absorbed += 1
                t = absorbed
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
