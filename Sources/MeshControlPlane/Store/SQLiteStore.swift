import Foundation
import GRDB
import Logging
import MeshConfig

/// The embedded store: an SQLite file in the data directory, so that a
/// restarted control plane starts with the services, instances and resources
/// it had. Written on every change of an instance (not on heartbeats) and on
/// every apply, on the control path only. One control plane owns the file.
public final class SQLiteStore: ControlPlaneStore {
    /// GRDB's queue serializes every access to the file; it is Sendable.
    private let database: DatabaseQueue
    private let logger: Logger

    /// Opens (or creates) `state.sqlite` in `directory`, creating the
    /// directory when missing, and brings its schema up to date.
    public init(directory: String, logger: Logger = Logger(label: "swiftmesh.control-plane.store")) throws {
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // WAL with NORMAL sync: a commit costs no fsync, and a crash loses
            // at most the last changes, which sidecars register again anyway.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        database = try DatabaseQueue(path: (directory as NSString).appendingPathComponent("state.sqlite"),
                                     configuration: configuration)
        try Self.migrator.migrate(database)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("instances") { db in
            try db.create(table: "instance") { table in
                table.column("service", .text).notNull()
                table.column("address", .text).notNull()
                table.column("port", .integer).notNull()
                table.column("protocol", .text).notNull()
                // A JSON object of label names to values.
                table.column("labels", .text).notNull()
                // Null for an external instance.
                table.column("sidecarID", .text)
                table.primaryKey(["service", "address", "port"])
            }
        }
        migrator.registerMigration("resources") { db in
            try db.create(table: "resource") { table in
                table.column("kind", .text).notNull()
                table.column("name", .text).notNull()
                // The spec as canonical JSON (ServicePolicyJSON).
                table.column("spec", .text).notNull()
                table.primaryKey(["kind", "name"])
            }
        }
        migrator.registerMigration("joinTokens") { db in
            try db.create(table: "joinToken") { table in
                // SHA-256 of the token, hex: the token itself is never stored.
                table.column("digest", .text).notNull().primaryKey()
                table.column("service", .text).notNull()
                table.column("createdAt", .double).notNull()
                table.column("expiresAt", .double).notNull()
            }
        }
        return migrator
    }

    // MARK: Join tokens

    public func saveJoinToken(digest: String, service: String, createdAt: Date, expiresAt: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO joinToken (digest, service, createdAt, expiresAt) VALUES (?, ?, ?, ?)",
                arguments: [digest, service, createdAt.timeIntervalSince1970, expiresAt.timeIntervalSince1970])
        }
    }

    public func joinToken(digest: String) async throws -> (service: String, expiresAt: Date)? {
        try await database.read { db in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT service, expiresAt FROM joinToken WHERE digest = ?", arguments: [digest]) else { return nil }
            let expires: Double = row["expiresAt"]
            return (row["service"], Date(timeIntervalSince1970: expires))
        }
    }

    public func saveResources(_ resources: [MeshResource]) async throws {
        try await database.write { db in
            for resource in resources {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO resource (kind, name, spec) VALUES (?, ?, ?)",
                    arguments: [resource.kind.rawValue, resource.name, resource.specJSON])
            }
        }
    }

    public func deleteResource(kind: MeshResource.Kind, name: String) async throws {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM resource WHERE kind = ? AND name = ?", arguments: [kind.rawValue, name])
        }
    }

    /// Every stored resource. One that no longer decodes (written by a
    /// version with other rules) is an error naming it, not a silent loss.
    func resources() throws -> [MeshResource] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT kind, name, spec FROM resource ORDER BY kind, name").map { row in
                try StoredResource.decode(kind: row["kind"], name: row["name"], specJSON: row["spec"])
            }
        }
    }

    /// Writes the change at once: a local file costs no round trip.
    public func record(_ change: InstanceChange) {
        do {
            try database.write { db in
                switch change {
                case .put(let stored), .restore(let stored):
                    let labels = String(decoding: try JSONEncoder().encode(stored.instance.labels), as: UTF8.self)
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO instance (service, address, port, protocol, labels, sidecarID) VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [stored.instance.service, stored.instance.key.address, stored.instance.key.port,
                                    stored.instance.protocolName, labels, stored.sidecarID])
                case .remove(let service, let key, _):
                    try db.execute(sql: "DELETE FROM instance WHERE service = ? AND address = ? AND port = ?",
                                   arguments: [service, key.address, key.port])
                }
            }
        } catch {
            logger.error("could not store an instance change; it lives in memory until the next change",
                         metadata: ["error": "\(error)"])
        }
    }

    public func load() async throws -> StoredState {
        try loadNow()
    }

    /// What `load` answers, without waiting: the file is local.
    public func loadNow() throws -> StoredState {
        StoredState(instances: try instances(), resources: try resources(), ownedByReplicas: false)
    }

    /// Every stored instance.
    func instances() throws -> [Registry.StoredInstance] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT service, address, port, protocol, labels, sidecarID FROM instance").map { row in
                let labelsText: String = row["labels"]
                let labels = (try? JSONDecoder().decode([String: String].self, from: Data(labelsText.utf8))) ?? [:]
                return Registry.StoredInstance(
                    instance: RegisteredInstance(service: row["service"], address: row["address"], port: row["port"],
                                                 protocolName: row["protocol"], labels: labels),
                    sidecarID: row["sidecarID"])
            }
        }
    }
}
