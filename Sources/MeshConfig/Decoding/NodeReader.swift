import Yams

/// A YAML node together with the field path that leads to it, so that every
/// issue about the node can name its place.
struct ConfigNode {
    let node: Node
    let path: FieldPath
}

/// The values of one YAML mapping whose keys were checked against the keys
/// its schema allows. An explicit null (`key:` or `key: ~`) counts as absent,
/// so `match:` with nothing after it means the same as leaving `match` out.
struct ConfigMapping {
    let path: FieldPath
    fileprivate let values: [String: Node]

    subscript(key: String) -> ConfigNode? {
        values[key].map { ConfigNode(node: $0, path: path.key(key)) }
    }

    func has(_ key: String) -> Bool {
        values[key] != nil
    }
}

/// Reads typed values out of YAML nodes and records an issue, with its field
/// path, for every node that does not have the expected shape. Readers return
/// nil after recording an issue so that callers can carry on with the rest of
/// the document instead of stopping at the first problem.
struct NodeReader {
    private(set) var issues: [ConfigIssue] = []

    mutating func report(_ path: FieldPath, _ message: String) {
        issues.append(ConfigIssue(path: path.description, message: message))
    }

    /// Records `expected <expectation>, got <what the node holds>`.
    mutating func reportExpected(_ expectation: String, got node: ConfigNode) {
        report(node.path, "expected \(expectation), got \(Self.describe(node.node))")
    }

    // MARK: Collections

    /// A mapping whose keys must come from `keys`; any other key is reported,
    /// with the closest known key as a suggestion when there is one.
    mutating func mapping(_ node: ConfigNode, keys: [String]) -> ConfigMapping? {
        guard case let .mapping(mapping) = node.node else {
            reportExpected("a mapping of \(keys.joined(separator: ", "))", got: node)
            return nil
        }
        var values: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyName(keyNode, in: node.path) else { continue }
            guard keys.contains(key) else {
                reportUnknownKey(key, at: node.path, known: keys)
                continue
            }
            if !Self.isNull(value) {
                values[key] = value
            }
        }
        return ConfigMapping(path: node.path, values: values)
    }

    /// The entries of a mapping whose keys are chosen by the user (header
    /// names), in file order.
    mutating func entries(_ node: ConfigNode, expected: String) -> [(key: String, value: ConfigNode)]? {
        guard case let .mapping(mapping) = node.node else {
            reportExpected(expected, got: node)
            return nil
        }
        var entries: [(key: String, value: ConfigNode)] = []
        for (keyNode, value) in mapping {
            if let key = keyName(keyNode, in: node.path) {
                entries.append((key, ConfigNode(node: value, path: node.path.key(key))))
            }
        }
        return entries
    }

    /// The value under `key`, reporting it as missing when absent.
    /// `hint` says what to add, e.g. `add e.g. "name: ingress"`.
    mutating func required(_ key: String, in mapping: ConfigMapping, hint: String) -> ConfigNode? {
        if let value = mapping[key] {
            return value
        }
        report(mapping.path.key(key), "missing; \(hint)")
        return nil
    }

    /// The elements of a list, each with its indexed path. With `atLeastOne`,
    /// an empty list is reported, naming the kind of element to add.
    mutating func list(_ node: ConfigNode, of plural: String, atLeastOne singular: String? = nil) -> [ConfigNode]? {
        guard case let .sequence(sequence) = node.node else {
            reportExpected("a list of \(plural)", got: node)
            return nil
        }
        if sequence.isEmpty, let singular {
            report(node.path, "the list is empty; add at least one \(singular)")
            return nil
        }
        return sequence.enumerated().map { index, element in
            ConfigNode(node: element, path: node.path.index(index))
        }
    }

    // MARK: Scalars

    /// The text of any non-null scalar: `name: 2024` is the name "2024", as a
    /// user would expect, even though YAML reads 2024 as a number.
    mutating func string(_ node: ConfigNode, expected: String) -> String? {
        guard case let .scalar(scalar) = node.node, !Self.isNull(node.node) else {
            reportExpected(expected, got: node)
            return nil
        }
        return scalar.string
    }

    /// A YAML integer written in decimal, from 1 to `maximum`. Quoted numbers
    /// are strings and rejected, so that the message shows the quotes.
    mutating func positiveInt(_ node: ConfigNode, maximum: Int = .max) -> Int? {
        guard let value = Self.decimalInteger(node.node), value > 0 else {
            reportExpected("a positive integer", got: node)
            return nil
        }
        guard value <= maximum else {
            reportExpected("a positive integer up to \(maximum)", got: node)
            return nil
        }
        return value
    }

    mutating func bool(_ node: ConfigNode) -> Bool? {
        guard Self.hasTag(node.node, .bool), let value = node.node.bool else {
            reportExpected("true or false", got: node)
            return nil
        }
        return value
    }

    /// One of an enum's config spellings, e.g. `round_robin`.
    mutating func choice<Choice>(_ node: ConfigNode, of type: Choice.Type) -> Choice?
    where Choice: RawRepresentable & CaseIterable, Choice.RawValue == String {
        let spellings = Choice.allCases.map(\.rawValue)
        if case let .scalar(scalar) = node.node, let value = Choice(rawValue: scalar.string) {
            return value
        }
        var message = "expected one of \(spellings.joined(separator: ", ")), got \(Self.describe(node.node))"
        if case let .scalar(scalar) = node.node,
           let suggestion = Suggestion.closest(to: scalar.string, among: spellings) {
            message += " (did you mean \"\(suggestion)\"?)"
        }
        report(node.path, message)
        return nil
    }

    // MARK: Node inspection

    /// The value of an integer scalar written in plain decimal digits. Other
    /// YAML integer spellings (`0x1f`, `1_000`, `1:30`) are refused: in a
    /// proxy config they are more likely mistakes than intent.
    static func decimalInteger(_ node: Node) -> Int? {
        guard hasTag(node, .int), case let .scalar(scalar) = node,
              scalar.string.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(scalar.string)
    }

    static func isNull(_ node: Node) -> Bool {
        hasTag(node, .null)
    }

    static func hasTag(_ node: Node, _ name: Tag.Name) -> Bool {
        node.tag.rawValue == name.rawValue
    }

    /// How a value reads in an error message: numbers, booleans and other
    /// unquoted YAML words as written, strings in quotes (so that `"5"` and `5`
    /// can be told apart), collections by their kind.
    static func describe(_ node: Node) -> String {
        switch node {
        case let .scalar(scalar):
            if isNull(node) {
                return "nothing"
            }
            return hasTag(node, .str) ? quoted(scalar.string) : scalar.string
        case .mapping:
            return "a mapping"
        case .sequence:
            return "a list"
        case .alias:
            return "an alias"
        }
    }

    /// `text` in double quotes with quotes, backslashes and line breaks escaped,
    /// cut short so that one bad value cannot flood the output.
    static func quoted(_ text: String) -> String {
        let limit = 60
        var escaped = ""
        for character in text.prefix(limit) {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            default: escaped.append(character)
            }
        }
        return "\"\(escaped)\(text.count > limit ? "…" : "")\""
    }

    // MARK: Keys

    private mutating func keyName(_ keyNode: Node, in path: FieldPath) -> String? {
        guard case let .scalar(scalar) = keyNode, !Self.isNull(keyNode) else {
            report(path, "expected keys to be plain names, got \(Self.describe(keyNode)) as a key")
            return nil
        }
        if Self.hasTag(keyNode, .merge) {
            report(path, "merge keys (<<) are not supported; write the keys out in full")
            return nil
        }
        return scalar.string
    }

    private mutating func reportUnknownKey(_ key: String, at path: FieldPath, known: [String]) {
        if let suggestion = Suggestion.closest(to: key, among: known) {
            report(path.key(key), "unknown key (did you mean \"\(suggestion)\"?)")
        } else {
            report(path.key(key), "unknown key; the keys here are \(known.joined(separator: ", "))")
        }
    }
}
