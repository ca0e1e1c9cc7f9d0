/// Where a value sits in the document, spelled as users read it:
/// `listeners[0].routes[1].cluster`.
struct FieldPath: Hashable, CustomStringConvertible {
    static let root = FieldPath(text: "")

    private let text: String

    private init(text: String) {
        self.text = text
    }

    /// The value under `key` of the mapping at this path.
    func key(_ key: String) -> FieldPath {
        FieldPath(text: text.isEmpty ? key : "\(text).\(key)")
    }

    /// The element at `index` (zero-based) of the list at this path.
    func index(_ index: Int) -> FieldPath {
        FieldPath(text: "\(text)[\(index)]")
    }

    var description: String { text }
}
