/// One thing wrong with a config document: where, and what would fix it.
public struct ConfigIssue: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field path, e.g. `listeners[0].routes[1].cluster`; empty for the
    /// document as a whole (syntax errors, unreadable files).
    public var path: String
    /// What is wrong and what would fix it, e.g. `expected a port 1-65535, got 70000`.
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`, or only the message for the document root.
    public var description: String {
        path.isEmpty ? message : "\(path): \(message)"
    }
}
