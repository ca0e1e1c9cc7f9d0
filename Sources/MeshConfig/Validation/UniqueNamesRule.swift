extension DocumentRules {
    /// Listener names label metrics and logs, and routes find clusters by
    /// name, so a second listener or cluster with a taken name is reported.
    static func duplicateNameIssues(in facts: DocumentFacts) -> [ConfigIssue] {
        duplicates(in: facts.listenerNames, kind: "listener") + duplicates(in: facts.clusterNames, kind: "cluster")
    }

    private static func duplicates(in names: [Located<String>], kind: String) -> [ConfigIssue] {
        var firstPath: [String: FieldPath] = [:]
        var issues: [ConfigIssue] = []
        for name in names {
            if let earlier = firstPath[name.value] {
                issues.append(ConfigIssue(
                    path: name.path.description,
                    message: "duplicate \(kind) name \"\(name.value)\", already used by \(earlier); give each \(kind) its own name"
                ))
            } else {
                firstPath[name.value] = name.path
            }
        }
        return issues
    }
}
