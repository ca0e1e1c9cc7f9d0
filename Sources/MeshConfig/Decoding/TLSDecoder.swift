extension ProxyConfigDecoder {
    /// `listeners[].tls`.
    mutating func listenerTLS(_ node: ConfigNode) -> ListenerTLSConfig? {
        guard let fields = reader.mapping(
            node, keys: ["certificate", "privateKey", "clientCertificate", "caCertificates", "mode", "minimumVersion"]
        ) else { return nil }
        let certificate = reader.required(
            "certificate", in: fields, hint: "add the PEM file of the listener's certificate chain, e.g. \"certificate: /etc/swiftmesh/tls.crt\""
        ).flatMap { pemFile($0) }
        let privateKey = reader.required(
            "privateKey", in: fields, hint: "add the PEM file of the certificate's private key, e.g. \"privateKey: /etc/swiftmesh/tls.key\""
        ).flatMap { pemFile($0) }
        let clientCertificate: ClientCertificateMode? =
            if let mode = fields["clientCertificate"] { reader.choice(mode, of: ClientCertificateMode.self) } else { ClientCertificateMode.none }
        let caCertificates = fields["caCertificates"].flatMap { pemFile($0) }
        let mode: ListenerTLSMode? =
            if let mode = fields["mode"] { reader.choice(mode, of: ListenerTLSMode.self) } else { .strict }
        let minimumVersion = self.minimumVersion(fields["minimumVersion"])
        if let clientCertificate, clientCertificate != .none, !fields.has("caCertificates") {
            reader.report(
                fields.path.key("caCertificates"),
                "is required when clientCertificate is \(clientCertificate.rawValue): add the PEM file of the authorities client certificates must chain to")
            return nil
        }
        guard let certificate, let privateKey, let clientCertificate, let mode, let minimumVersion else { return nil }
        if clientCertificate == .required && mode == .permissive {
            reader.report(
                fields.path.key("clientCertificate"),
                "cannot be required in permissive mode, where plaintext clients present no certificate: use optional, or mode: strict")
            return nil
        }
        if fields.has("caCertificates") && caCertificates == nil { return nil }
        return ListenerTLSConfig(
            certificate: certificate, privateKey: privateKey, clientCertificate: clientCertificate,
            caCertificates: caCertificates, mode: mode, minimumVersion: minimumVersion)
    }

    /// `clusters[].tls`.
    mutating func clusterTLS(_ node: ConfigNode) -> ClusterTLSConfig? {
        guard let fields = reader.mapping(
            node, keys: ["sni", "caCertificates", "certificate", "privateKey", "identities", "minimumVersion"]
        ) else {
            return nil
        }
        let sni = fields["sni"].flatMap { serverName($0) }
        let caCertificates = fields["caCertificates"].flatMap { pemFile($0) }
        let certificate = fields["certificate"].flatMap { pemFile($0) }
        let privateKey = fields["privateKey"].flatMap { pemFile($0) }
        let identities = fields["identities"].flatMap { node in
            reader.list(node, of: "identities", atLeastOne: "identity").map { items in
                items.compactMap { reader.string($0, expected: "a URI or DNS name such as spiffe://swiftmesh.local/service/user") }
            }
        }
        let minimumVersion = self.minimumVersion(fields["minimumVersion"])
        switch (fields.has("certificate"), fields.has("privateKey")) {
        case (true, false):
            reader.report(fields.path.key("privateKey"), "is required with certificate: add the PEM file of the client certificate's private key")
            return nil
        case (false, true):
            reader.report(fields.path.key("certificate"), "is required with privateKey: add the PEM file of the client certificate chain")
            return nil
        default:
            break
        }
        if fields.has("sni") && sni == nil || fields.has("caCertificates") && caCertificates == nil
            || fields.has("certificate") && certificate == nil || fields.has("privateKey") && privateKey == nil
            || fields.has("identities") && identities == nil {
            return nil
        }
        guard let minimumVersion else { return nil }
        return ClusterTLSConfig(
            sni: sni, caCertificates: caCertificates, certificate: certificate, privateKey: privateKey,
            identities: identities ?? [], minimumVersion: minimumVersion)
    }

    /// `minimumVersion`: "1.2" (the default) or "1.3".
    private mutating func minimumVersion(_ node: ConfigNode?) -> TLSMinimumVersion? {
        guard let node else { return .tls12 }
        return reader.choice(node, of: TLSMinimumVersion.self)
    }

    /// A file path; whether it can be read and parsed is checked when the
    /// proxy loads it (`swiftmesh validate` does too).
    private mutating func pemFile(_ node: ConfigNode) -> PEMSource? {
        guard let path = reader.string(node, expected: "the path of a PEM file") else { return nil }
        guard !path.isEmpty else {
            reader.report(node.path, "is empty: give the path of a PEM file")
            return nil
        }
        return .file(path)
    }

    /// A DNS name for SNI: no IP literal (RFC 6066 section 3), no port.
    private mutating func serverName(_ node: ConfigNode) -> String? {
        guard let name = reader.string(node, expected: "a server name such as api.example.com") else { return nil }
        guard DNSNameSyntax.isValid(Substring(name)), IPLiteral(Substring(name)) == nil else {
            reader.report(node.path, "expected a DNS name such as api.example.com (SNI carries no IP address or port), got \"\(name)\"")
            return nil
        }
        return name
    }
}
