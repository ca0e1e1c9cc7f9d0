/// Finds the known word a mistyped one was probably meant to be, for
/// "did you mean" hints on unknown keys and enum values.
enum Suggestion {
    /// The candidate closest to `word`, if it is close enough to be a likely
    /// typo. Case, `_` and `-` are ignored, so `path_prefix` and `PathPrefix`
    /// both find `pathPrefix`.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let target = folded(word)
        // About one edit per three characters, and at least one: `routs` finds
        // `routes`, but `name` does not find `port`.
        let allowed = max(1, target.count / 3)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(target, folded(candidate))
            if distance <= allowed, distance < (best?.distance ?? .max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    private static func folded(_ word: String) -> [Character] {
        Array(word.lowercased().filter { $0 != "_" && $0 != "-" })
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
