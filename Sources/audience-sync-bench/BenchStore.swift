import AudienceSync
import Foundation
import Logging

/// What the benchmark does to the stores its stages run on, SQLite files or schemas of a
/// PostgreSQL database (`--store`), beyond what the engine itself does.
extension StoreLocation {
    /// Removes everything stored, so that an ingest starts from an empty store: the SQLite file
    /// with its `-wal` and `-shm`, or the PostgreSQL schema with every table in it (the store
    /// creates it again when opened).
    func removeAll() async throws {
        switch self {
        case .sqlite(let path):
            for file in [path, path + "-wal", path + "-shm"] {
                try? FileManager.default.removeItem(atPath: file)
            }
        case .postgres(let target):
            try await PostgresStore.withStore(target, access: .readWrite, logger: SQLiteStore.silentLogger) { store in
                // The schema name is validated (a plain identifier) by `PostgresLocation`.
                _ = try await store.rows(CompiledQuery(sql: "DROP SCHEMA \"\(target.schema)\" CASCADE", binds: []))
            }
        }
    }

    /// Brings the planner's statistics up to date after a bulk load, as autovacuum would do a
    /// little later on its own (SQLite needs nothing: its planner reads the indexes).
    func analyze() async throws {
        guard case .postgres(let target) = self else { return }
        try await PostgresStore.withStore(target, access: .readWrite, logger: SQLiteStore.silentLogger) { store in
            _ = try await store.rows(CompiledQuery(sql: "ANALYZE", binds: []))
        }
    }

    /// The bytes the store takes: the SQLite file plus its `-wal`, or every table of the schema with
    /// its indexes and TOAST.
    func bytes() async throws -> Int {
        switch self {
        case .sqlite(let path):
            return DatabaseFiles.size(of: path)
        case .postgres(let target):
            return try await PostgresStore.withStore(target, access: .readOnly, logger: SQLiteStore.silentLogger) {
                store in
                let rows = try await store.rows(
                    CompiledQuery(
                        sql: """
                            SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                            """, binds: []))
                guard case .integer(let bytes) = rows.first?.first else { return 0 }
                return Int(bytes)
            }
        }
    }

    /// The server's version and the settings that bear on these figures (null for SQLite, whose
    /// version is `sqlite_version`).
    func serverSettings() async throws -> JSONValue {
        guard case .postgres(let target) = self else { return .null }
        return try await PostgresStore.withStore(target, access: .readOnly, logger: SQLiteStore.silentLogger) { store in
            let names = [
                "server_version", "shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size",
                "max_wal_size", "synchronous_commit", "fsync", "wal_level", "max_parallel_workers_per_gather",
                "jit", "random_page_cost",
            ]
            let list = names.map { "'\($0)'" }.joined(separator: ", ")
            let rows = try await store.rows(
                CompiledQuery(
                    sql: "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings WHERE name IN (\(list))",
                    binds: []))
            var settings: [String: String] = [:]
            for row in rows {
                if case .text(let name) = row[0], case .text(let value) = row[1] { settings[name] = value }
            }
            return .object(names.compactMap { name in settings[name].map { JSONValue.Member(name, .string($0)) } })
        }
    }

    /// Where the store is, for progress lines: the SQLite file, or the database and schema.
    var place: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let target): return target.description
        }
    }

    /// The kind of store, for the report: `sqlite` or `postgresql`.
    var kind: String {
        switch self {
        case .sqlite: return "sqlite"
        case .postgres: return "postgresql"
        }
    }
}
