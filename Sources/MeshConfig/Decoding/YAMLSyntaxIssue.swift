import Yams

/// Words a YAML parse failure as one document-level issue with the line and
/// column Yams reports. Parsing stops at the first syntax error, so there is
/// never more than one.
enum YAMLSyntaxIssue {
    static func issue(for error: any Error) -> ConfigIssue {
        ConfigIssue(path: "", message: message(for: error))
    }

    private static func message(for error: any Error) -> String {
        guard let yamlError = error as? YamlError else {
            return "invalid YAML: \(error)"
        }
        switch yamlError {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return message
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return "invalid YAML at line \(context.mark.line), column \(context.mark.column): key \(keys) appears more than once in one mapping; keep one"
        case let .reader(problem, offset, _, yaml):
            guard let offset else { return "invalid YAML: \(problem)" }
            let (line, column) = position(ofCharacter: offset, in: yaml)
            return "invalid YAML at line \(line), column \(column): \(problem)"
        default:
            return "invalid YAML: \(yamlError)"
        }
    }

    /// One-based line and column of the character at `offset`.
    private static func position(ofCharacter offset: Int, in text: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
