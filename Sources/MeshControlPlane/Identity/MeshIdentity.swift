/// Who may do what in the mesh: the certificate authority, the admin token
/// the mutating HTTP API asks for, and the join tokens sidecars present.
public struct MeshIdentity: Sendable {
    public let authority: CertificateAuthority
    /// nil in development mode (`--dev`): the HTTP API takes changes from
    /// anyone who reaches it, and sidecars need no join token.
    public let adminToken: AdminToken?
    public let joinTokens: JoinTokens

    public init(authority: CertificateAuthority, adminToken: AdminToken?, joinTokens: JoinTokens) {
        self.authority = authority
        self.adminToken = adminToken
        self.joinTokens = joinTokens
    }

    public var isDevelopment: Bool { adminToken == nil }
}
