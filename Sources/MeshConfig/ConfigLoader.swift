import Yams

/// The way in: YAML text or a file to a validated `ProxyConfig`, or every
/// issue found. Used by `swiftmesh validate`, proxy start-up and SIGHUP reload.
public enum ConfigLoader {
    /// Parses and validates `yaml`. Throws all issues in the document, not
    /// only the first; a YAML syntax error is a single issue with its line and
    /// column, since parsing cannot go on past it.
    public static func decode(yaml: String) throws(ConfigErrors) -> ProxyConfig {
        let root: Node?
        do {
            // UTF-8 explicitly: Yams' default encoding can be changed by an
            // environment variable, which a proxy should not depend on.
            root = try Yams.compose(yaml: yaml, .default, .default, .utf8)
        } catch {
            throw ConfigErrors(issues: [YAMLSyntaxIssue.issue(for: error)])
        }
        var decoder = ProxyConfigDecoder()
        let config = decoder.decode(document: root)
        let issues = decoder.reader.issues + DocumentRules.issues(in: decoder.facts)
        if let config, issues.isEmpty {
            return config
        }
        assert(!issues.isEmpty, "the decoder returned no config without reporting why")
        throw ConfigErrors(issues: issues)
    }

    /// Reads the file at `path` and decodes it. An unreadable file is one
    /// issue with an empty path that names the file and the OS error.
    public static func load(path: String) throws(ConfigErrors) -> ProxyConfig {
        switch ConfigFileReader.text(ofFile: path) {
        case let .success(text):
            return try decode(yaml: text)
        case let .failure(issue):
            throw ConfigErrors(issues: [issue])
        }
    }
}
