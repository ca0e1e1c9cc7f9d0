extension ProxyConfigDecoder {
    /// `requestHeadersToAdd`: header name -> value, in name order. A YAML
    /// mapping has no order, and with unique names none changes what is
    /// sent; one order makes every form of a route the same value: the file,
    /// the admin's `/config` and the control plane's store (JSON objects
    /// with sorted keys), so that re-applying an unchanged policy is
    /// `unchanged` on every replica.
    mutating func headersToAdd(_ node: ConfigNode) -> [HeaderValue]? {
        guard let entries = reader.entries(node, expected: "a mapping of header name to value, e.g. { x-env: prod }") else {
            return nil
        }
        // Names differing only in case are one header; the map alone cannot
        // catch that because YAML keys are case-sensitive.
        var firstPathByName: [String: FieldPath] = [:]
        return entries.compactMap { entry -> HeaderValue? in
            let name = editableHeaderName(entry.key, at: entry.value.path)
            let value = reader.string(entry.value, expected: "a header value")
            if let value, !HeaderNameSyntax.isValidValue(value) {
                reader.report(entry.value.path, "header values must not contain line breaks or NUL characters")
                return nil
            }
            guard let name, let value else { return nil }
            if let first = firstPathByName[name] {
                reader.report(entry.value.path, "sets the same header as \(first) (names are case-insensitive); keep one")
                return nil
            }
            firstPathByName[name] = entry.value.path
            return HeaderValue(name: name, value: value)
        }.sorted { $0.name < $1.name }
    }

    /// `requestHeadersToRemove`: a list of header names.
    mutating func headersToRemove(_ node: ConfigNode) -> [String]? {
        guard let items = reader.list(node, of: "header names") else { return nil }
        return items.compactMap { item in
            reader.string(item, expected: "a header name").flatMap { editableHeaderName($0, at: item.path) }
        }
    }

    /// A header name a route may change: not one the proxy manages itself.
    private mutating func editableHeaderName(_ text: String, at path: FieldPath) -> String? {
        guard let name = reader.headerName(text, at: path) else { return nil }
        guard !HeaderNameSyntax.managedByProxy.contains(name) else {
            reader.report(path, "\(NodeReader.quoted(name)) is managed by the proxy (connection handling or message framing), so routes cannot add or remove it; remove this entry")
            return nil
        }
        return name
    }
}
