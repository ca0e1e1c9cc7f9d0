/// A value and the field path it was read from.
struct Located<Value> {
    let value: Value
    let path: FieldPath
}

/// The names and addresses met while decoding, each with its path, in
/// document order. Rules that relate different places in the document check
/// these rather than the decoded model: a value is recorded as soon as it is
/// read, even when the object around it has other issues, so one broken field
/// in a cluster does not also make every route to that cluster "unknown".
struct DocumentFacts {
    var listenerNames: [Located<String>] = []
    var clusterNames: [Located<String>] = []
    /// Cluster names used by routes, as `cluster:` or in `split:`.
    var clusterReferences: [Located<String>] = []
    /// `admin.listen` first, then each listener's `listen`.
    var listenAddresses: [Located<HostPort>] = []
}
