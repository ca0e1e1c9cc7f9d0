import Foundation
import MeshConfig

/// Join tokens (`swiftmesh token create --service NAME`): each lets a sidecar
/// obtain certificates for one service, and only that one, until it expires.
/// The store keeps the token's SHA-256, never the token, which is shown once
/// when it is made.
public struct JoinTokens: Sendable {
    private let store: any ControlPlaneStore

    public static let defaultLifetime = Duration.seconds(24 * 3600)
    /// A year: a token is a credential, not a configuration.
    public static let maximumLifetimeSeconds: Int64 = 365 * 24 * 3600

    public init(store: any ControlPlaneStore) {
        self.store = store
    }

    public struct Created: Sendable {
        public var token: String
        public var service: String
        public var expiresAt: Date
    }

    public func create(service: String, lifetime: Duration, now: Date = Date()) async throws -> Created {
        let token = RandomToken.make(prefix: "smj_")
        let expiresAt = now + TimeInterval(lifetime.components.seconds)
        try await store.saveJoinToken(digest: RandomToken.digest(token), service: service, createdAt: now, expiresAt: expiresAt)
        return Created(token: token, service: service, expiresAt: expiresAt)
    }

    /// The service `token` grants; nil for a token that was never made or has expired.
    public func service(grantedBy token: String, now: Date = Date()) async throws -> String? {
        guard let found = try await store.joinToken(digest: RandomToken.digest(token)), found.expiresAt > now else { return nil }
        return found.service
    }
}
