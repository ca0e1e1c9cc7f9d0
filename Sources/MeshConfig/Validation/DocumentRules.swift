/// Rules that relate different places in one document, checked on the facts
/// the decoder recorded while walking it. Their issues follow the decoder's.
enum DocumentRules {
    static func issues(in facts: DocumentFacts) -> [ConfigIssue] {
        duplicateNameIssues(in: facts) + listenAddressIssues(in: facts) + clusterReferenceIssues(in: facts)
    }
}
