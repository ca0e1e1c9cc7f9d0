extension ProxyConfigDecoder {
    mutating func route(_ node: ConfigNode) -> RouteConfig? {
        guard let fields = reader.mapping(
            node,
            keys: ["match", "cluster", "split", "timeout", "requestHeadersToAdd", "requestHeadersToRemove", "fault", "retries"]
        ) else { return nil }
        // No `match` means every request, like `match: {}`.
        let match: RouteMatch? = if let matchNode = fields["match"] { self.match(matchNode) } else { RouteMatch() }
        let action = self.action(fields)
        let timeout = fields["timeout"].flatMap { reader.positiveDuration($0) }
        let headersToAdd = fields["requestHeadersToAdd"].flatMap { self.headersToAdd($0) }
        let headersToRemove = fields["requestHeadersToRemove"].flatMap { self.headersToRemove($0) }
        let fault = fields["fault"].flatMap { self.fault($0) }
        let retries = fields["retries"].flatMap { self.retryPolicy($0) }

        guard let match, let action else { return nil }
        if fields.has("fault") && fault == nil || fields.has("retries") && retries == nil { return nil }
        return RouteConfig(
            match: match,
            action: action,
            timeout: timeout,
            requestHeadersToAdd: headersToAdd ?? [],
            requestHeadersToRemove: headersToRemove ?? [],
            fault: fault,
            retries: retries
        )
    }

    /// Exactly one of `cluster` and `split`. Both are decoded even when both
    /// are present, so that issues inside either are reported too.
    private mutating func action(_ fields: ConfigMapping) -> RouteAction? {
        let cluster = fields["cluster"].flatMap { clusterReference($0) }
        let split = fields["split"].flatMap { self.split($0) }
        switch (fields.has("cluster"), fields.has("split")) {
        case (true, true):
            reader.report(fields.path, "has both cluster and split; keep one (cluster sends every request to one cluster, split divides requests by weight)")
            return nil
        case (false, false):
            reader.report(fields.path, "has neither cluster nor split; add e.g. \"cluster: user\" to say where matched requests go")
            return nil
        case (true, false):
            return cluster.map(RouteAction.cluster)
        case (false, true):
            return split.map(RouteAction.split)
        }
    }

    private mutating func split(_ node: ConfigNode) -> [WeightedCluster]? {
        guard let entries = reader.list(
            node,
            of: "weighted clusters",
            atLeastOne: "entry such as { cluster: user, weight: 100 }"
        ) else { return nil }
        return entries.compactMap { weightedCluster($0) }
    }

    private mutating func weightedCluster(_ node: ConfigNode) -> WeightedCluster? {
        guard let fields = reader.mapping(node, keys: ["cluster", "weight"]) else { return nil }
        let cluster = reader.required("cluster", in: fields, hint: "add e.g. \"cluster: user\"")
            .flatMap { clusterReference($0) }
        let weight = reader.required("weight", in: fields, hint: "add the cluster's relative share, e.g. \"weight: 10\"")
            .flatMap { self.weight($0) }
        guard let cluster, let weight else { return nil }
        return WeightedCluster(cluster: cluster, weight: weight)
    }

    /// A cluster name used by a route, recorded for the reference rule.
    private mutating func clusterReference(_ node: ConfigNode) -> String? {
        guard let name = reader.name(node) else { return nil }
        facts.clusterReferences.append(Located(value: name, path: node.path))
        return name
    }
}
