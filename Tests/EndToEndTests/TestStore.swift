import AudienceSync
import Foundation
import SharedTestSupport
import Testing

/// The stores an end-to-end sync test runs on (SPEC §12: every command, the same results).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }
}

/// Where an end-to-end test's project keeps its state — the SQLite file `audiences.db` in the
/// project's folder, or a new schema of the PostgreSQL test server (`PostgresTestServer`), dropped
/// when the test ends — and the test's own access to it: reads, each on a read-only store of its
/// own (so that they see what the binary committed, as another process), and the sync lock.
struct TestStore: Sendable {
    let kind: StoreKind
    let location: StoreLocation
    /// The lines of `audience-sync.yml` that put the project's state here. The binary reads the
    /// PostgreSQL password from the variable the test process has (it inherits the environment).
    let configuration: String

    /// Runs `body` with a store of `kind` for the project in `scratch`; nil, without running it,
    /// when `kind` is PostgreSQL and there is no server (skipped, or a failure when one is required).
    @discardableResult
    static func with<T>(
        _ kind: StoreKind, in scratch: ScratchDirectory, _ body: (TestStore) async throws -> T
    ) async throws -> T? {
        switch kind {
        case .sqlite:
            let store = TestStore(
                kind: kind, location: .sqlite(path: scratch.file("audiences.db")),
                configuration: "database: audiences.db")
            return try await body(store)
        case .postgres:
            guard
                let url = PostgresTestServer.url(fail: { (reason: String) in Issue.record(Comment(rawValue: reason)) })
            else { return nil }
            let schema = PostgresTestServer.newSchema()
            let password = "env:\(PostgresTestServer.passwordVariable)"
            let store = TestStore(
                kind: kind,
                location: .postgres(
                    try PostgresLocation(
                        url: url, password: Secret(.environment(PostgresTestServer.passwordVariable)), schema: schema)),
                configuration: "database: \(url)\ndatabase_schema: \(schema)\ndatabase_password: \(password)")
            do {
                let result = try await body(store)
                try await store.dropSchema()
                return result
            } catch {
                try? await store.dropSchema()
                throw error
            }
        }
    }

    /// The rows of `sql` (with `$1`… on PostgreSQL, `?` on SQLite), on a read-only store.
    func rows(_ sql: String, _ binds: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await location.withStore(access: .readOnly, logger: SQLiteStore.silentLogger) { (store: any Store) in
            try await store.rows(CompiledQuery(sql: sql, binds: binds))
        }
    }

    /// The first column of `sql`'s rows, as text (a number as its digits).
    func strings(_ sql: String, _ binds: [SQLValue] = []) async throws -> [String] {
        try await rows(sql, binds).map { (row: [SQLValue]) -> String in
            switch row.first {
            case .text(let text)?: return text
            case .integer(let value)?: return String(value)
            default: return ""
            }
        }
    }

    /// Runs `body` while this process holds the store's sync lock, as a sync would.
    func withSyncLock<T>(_ body: () async throws -> T) async throws -> T {
        try await location.withStore(access: .readWrite, logger: SQLiteStore.silentLogger) { (store: any Store) in
            try await store.withSyncLock(body)
        }
    }

    /// Writes the project's `audience-sync.yml`: `rest` (everything but the store) after this
    /// store's lines.
    func writeConfiguration(_ rest: String, in scratch: ScratchDirectory) throws {
        try scratch.write("audience-sync.yml", configuration + "\n" + rest)
    }

    /// Replaces the `database:` line of the project's `audience-sync.yml` (the demo's) with this
    /// store's lines.
    func configureDemo(in scratch: ScratchDirectory) throws {
        let text = try String(contentsOfFile: scratch.file("audience-sync.yml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { (line: Substring) -> String in
            line.hasPrefix("database:") ? configuration : String(line)
        }
        try scratch.write("audience-sync.yml", lines.joined(separator: "\n"))
    }

    /// What the store holds, table by table, as text: equal before and after a command that must
    /// change nothing. SQLite: the file's bytes (stricter: not even a page rewritten).
    func fingerprint() async throws -> [String] {
        switch location {
        case .sqlite(let path):
            return [try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString()]
        case .postgres(let target):
            var tables: [String] = []
            for table in try await strings(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [.text(target.schema)])
            {
                // Table names come from the catalog of the test's own schema.
                tables += [table] + (try await strings("SELECT t::text FROM \"\(table)\" t ORDER BY t::text"))
            }
            return tables
        }
    }

    private func dropSchema() async throws {
        guard case .postgres(let target) = location else { return }
        _ = try await location.withStore(access: .readWrite, logger: SQLiteStore.silentLogger) { (store: any Store) in
            try await store.rows(CompiledQuery(sql: "DROP SCHEMA \"\(target.schema)\" CASCADE", binds: []))
        }
    }
}
