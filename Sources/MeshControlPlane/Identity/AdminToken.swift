import Crypto
import Foundation

/// The token that the control plane's mutating HTTP API asks for
/// (`Authorization: Bearer <token>`): created on first start in the data
/// directory (`admin-token`, mode 0600), so whoever may read that file may
/// change the mesh. `--dev` runs without one.
public struct AdminToken: Sendable {
    public let value: String

    public static let fileName = "admin-token"

    /// The token in `directory/admin-token`, created when missing.
    public static func open(directory: String) throws -> AdminToken {
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let existing = try SecretFile.read(path) {
            let value = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty else {
                throw SecretFile.Problem(description: "\(path) is empty; delete it and a new token is made on start")
            }
            return AdminToken(value: value)
        }
        let value = makeValue()
        try SecretFile.create(path, content: value + "\n")
        return AdminToken(value: value)
    }

    /// The token all replicas share (kept in the shared store), written to
    /// `directory/admin-token` too, so that the CLI on this host finds it as
    /// it does beside a control plane of its own.
    public static func shared(_ value: String, directory: String) throws -> AdminToken {
        let path = (directory as NSString).appendingPathComponent(fileName)
        if try SecretFile.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines) != value {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: path)
            try SecretFile.create(path, content: value + "\n")
        }
        return AdminToken(value: value)
    }

    /// A new token: 32 random bytes.
    public static func makeValue() -> String {
        RandomToken.make(prefix: "sma_")
    }

    /// Compares in time that does not depend on where the first difference
    /// is, so the token cannot be guessed a character at a time.
    public func matches(_ presented: String) -> Bool {
        let a = SHA256.hash(data: Array(presented.utf8))
        let b = SHA256.hash(data: Array(value.utf8))
        return a == b
    }
}

/// Random tokens: 32 bytes from the system's generator, base64url.
enum RandomToken {
    static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + text
    }

    /// What the store keeps of a token: never the token itself.
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
