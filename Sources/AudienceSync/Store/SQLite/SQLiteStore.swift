import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded store: one SQLite file (SPEC §2), created with mode 0600 on first use, in WAL mode
/// so that readers never block the writer, and migrated to the current schema (`SQLiteSchema`).
///
/// The engine's reads, the diff and the sync state share one connection (`SQLiteConnection`); an
/// ingest writes through a connection of its own (`SQLiteEventWriter`), so that `serve`, `ingest`
/// and `sync` can work on one file at once.
public final class SQLiteStore: Store {
    public let path: String
    public let access: StoreAccess
    public let dialect: any SQLDialect = SQLiteDialect()
    public var textLimits: StoredTextLimits { .none }
    let connection: SQLiteConnection
    let logger: Logger
    /// SQLite's page cache per connection, in MiB.
    let cacheMebibytes: Int

    public var location: String { path }

    /// Opens the store at `path`: for `.readWrite` creating and migrating it; for `.readOnly` the
    /// file must exist with the current schema.
    public init(
        path: String, access: StoreAccess = .readWrite, logger: Logger = SQLiteStore.silentLogger,
        cacheMebibytes: Int = SQLiteStore.defaultCacheMebibytes
    ) async throws {
        self.path = path
        self.access = access
        self.logger = logger
        self.cacheMebibytes = cacheMebibytes
        connection = try SQLiteConnection(
            path: path, mode: access == .readWrite ? .readWrite : .readOnly, cacheMebibytes: cacheMebibytes)
        switch access {
        case .readWrite:
            try await connection.run { try $0.migrate(SQLiteSchema.migrations) }
        case .readOnly:
            let version = try await connection.run { try $0.userVersion }
            guard version == SQLiteSchema.migrations.count else {
                throw AudienceSyncError(
                    .store,
                    "the store has schema version \(version), this program expects \(SQLiteSchema.migrations.count); run 'audience-sync ingest' once to upgrade it",
                    file: path)
            }
        }
    }

    /// SQLite's page cache per connection. Ingest inserts into indexes keyed by random message ids;
    /// a cache far larger than SQLite's 2 MB default keeps their inner pages in memory.
    public static var defaultCacheMebibytes: Int {
        if let text = getenv("AUDIENCE_SYNC_CACHE_MIB"), let value = Int(String(cString: text)), value > 0 { return value }
        return 64
    }

    /// A logger that drops everything (for callers that give none).
    public static let silentLogger = Logger(label: "audience-sync", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The library's error for a failure of SQLite on the store at `path`: a busy or locked
    /// database (after the busy timeout) is `.locked`; every other SQLite failure `.store`, with
    /// SQLite's code, message and statement (never bound values) as its underlying error.
    static func storeError(_ error: any Error, path: String) -> AudienceSyncError {
        switch error {
        case let error as AudienceSyncError:
            return error.file == nil ? AudienceSyncError(error.code, error.message, file: path, underlying: error.underlying) : error
        case let error as SQLiteError:
            if error.isBusy {
                return AudienceSyncError(
                    .locked, "the store stayed locked by another process (\(error.message))", file: path, underlying: error)
            }
            return AudienceSyncError(.store, error.description, file: path)
        default:
            return AudienceSyncError(.store, "\(error)", file: path)
        }
    }
}

// MARK: MembershipSource

extension SQLiteStore {
    public func memberIDs(_ query: CompiledQuery) async throws -> [String] {
        try await connection.run { database in
            var members: [String] = []
            try database.prepare(query.sql).forEachRow(query.binds.map(SQLiteValue.init)) { row in
                if let uid = row.text(0) { members.append(uid) }
            }
            return members
        }
    }

    public func memberValues(_ query: CompiledQuery) async throws -> [MemberValue] {
        try await connection.run { database in
            var values: [MemberValue] = []
            try database.prepare(query.sql).forEachRow(query.binds.map(SQLiteValue.init)) { row in
                guard let uid = row.text(0), let value = row.text(1) else { return }
                values.append(MemberValue(userId: uid, value: value))
            }
            return values
        }
    }

    public func rows(_ query: CompiledQuery) async throws -> [[SQLValue]] {
        try await connection.run { database in
            try database.prepare(query.sql).rows(query.binds.map(SQLiteValue.init)).map { $0.map(SQLValue.init) }
        }
    }

    /// `EXPLAIN QUERY PLAN`, indented as SQLite's shell shows it.
    public func plan(_ query: CompiledQuery) async throws -> String {
        try await connection.run { database in
            var depth: [Int64: Int] = [0: 0]
            var lines: [String] = []
            try database.prepare("EXPLAIN QUERY PLAN " + query.sql).forEachRow(query.binds.map(SQLiteValue.init)) { row in
                let level = (depth[row.int64(1)] ?? 0) + 1
                depth[row.int64(0)] = level
                lines.append(String(repeating: "  ", count: level) + (row.text(3) ?? ""))
            }
            return lines.joined(separator: "\n")
        }
    }
}

extension SQLiteValue {
    /// SQLite's spelling of an engine-neutral bind: a boolean is 1 or 0.
    init(_ value: SQLValue) {
        switch value {
        case .null: self = .null
        case .integer(let value): self = .integer(value)
        case .real(let value): self = .real(value)
        case .text(let value): self = .text(value)
        case .boolean(let value): self = .integer(value ? 1 : 0)
        }
    }
}

extension SQLValue {
    /// An SQLite result as an engine-neutral value (a blob, which the store never holds, as its bytes' text).
    init(_ value: SQLiteValue) {
        switch value {
        case .null: self = .null
        case .integer(let value): self = .integer(value)
        case .real(let value): self = .real(value)
        case .text(let value): self = .text(value)
        case .blob(let bytes): self = .text(String(decoding: bytes, as: UTF8.self))
        }
    }
}
