extension DocumentRules {
    /// Every cluster a route names (`cluster:` or a `split:` entry) is defined
    /// under `clusters`. The message lists the defined names in config order,
    /// which is usually enough to spot the typo.
    static func clusterReferenceIssues(in facts: DocumentFacts) -> [ConfigIssue] {
        var known: [String] = []
        for name in facts.clusterNames where !known.contains(name.value) {
            known.append(name.value)
        }
        let fix = known.isEmpty ? "no clusters are defined; add one under clusters" : "known: \(known.joined(separator: ", "))"
        return facts.clusterReferences
            .filter { !known.contains($0.value) }
            .map { ConfigIssue(path: $0.path.description, message: "unknown cluster \"\($0.value)\" (\(fix))") }
    }
}
