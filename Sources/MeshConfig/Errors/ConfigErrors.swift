/// Every issue found in one config document. Decoding reports them all at
/// once so that a user fixes a file in one pass rather than one error per run.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// In document order as far as decoding walks it; issues that relate
    /// several places (unknown clusters, duplicates) come after the rest.
    public var issues: [ConfigIssue]

    public init(issues: [ConfigIssue]) {
        self.issues = issues
    }

    /// One issue per line, each `path: message`.
    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}
