import CSQLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to an SQLite database file.
///
/// Deliberately not `Sendable`: one owner (a single task or thread) uses a connection at a time.
/// A read-write connection creates the file with mode 0600 (it holds user ids and traits),
/// uses WAL so that readers never block the writer, and waits up to `busyTimeout` for locks.
public final class Database {
    public enum Mode: Sendable {
        /// Opens or creates the file for reading and writing.
        case readWrite
        /// Opens an existing file for reading only; nothing can be written through it.
        case readOnly
    }

    let handle: OpaquePointer
    /// Written by the WAL hook (`recordWALSizeInsteadOfCheckpointing`); freed after the connection closes.
    private let walFrames: UnsafeMutablePointer<Int32>
    /// Statements prepared by `cached`, by their SQL.
    private var statements: [String: Statement] = [:]
    /// The database file.
    public let path: String
    public let mode: Mode

    /// Opens (and for `.readWrite`, creates) the database at `path`.
    /// - Parameter pageSize: the page size of a database created by this call (SQLite fixes it at
    ///   creation, and WAL mode keeps it); ignored for an existing database.
    public init(path: String, mode: Mode = .readWrite, busyTimeoutMilliseconds: Int32 = 10_000, pageSize: Int = Database.defaultPageSize)
        throws
    {
        self.path = path
        self.mode = mode
        Database.configureProcess
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch mode {
        case .readWrite:
            try Database.createPrivately(path)
            flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly:
            flags |= SQLITE_OPEN_READONLY
        }
        var connection: OpaquePointer?
        let code = sqlite3_open_v2(path, &connection, flags, nil)
        guard code == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(connection)
            throw SQLiteError(extendedCode: code, message: "cannot open \(path): \(message)")
        }
        handle = connection
        walFrames = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        walFrames.initialize(to: 0)
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        if mode == .readWrite {
            try execute("PRAGMA page_size = \(pageSize)")
            try execute("PRAGMA journal_mode = WAL")
            try execute("PRAGMA synchronous = FULL")
        }
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
        walFrames.deallocate()
        // Each connection works on a thread of its own, so its page cache was allocated in that
        // thread's malloc arena, where no other thread reuses it once freed: give it back to the
        // system, or every connection a process opens in turn would add its cache to the
        // resident set (64 MiB each by default).
        audience_sync_release_free_memory()
    }

    /// SQLite's process-wide settings, made once before the first connection: the page caches of
    /// all connections in one pool (`audience_sync_sqlite3_pool_page_caches`: connections work on
    /// threads of their own, whose freed memory other threads' connections could not reuse); memory
    /// statistics off (each of SQLite's allocations took a global mutex for them; 15–20% of the time of a
    /// statement that sorts a million rows).
    private static let configureProcess: Void = {
        _ = audience_sync_sqlite3_disable_memory_statistics()
        _ = audience_sync_sqlite3_pool_page_caches(
            Int32(Database.defaultPageSize), Int32(SQLiteStore.defaultCacheMebibytes << 20 / Database.defaultPageSize))
    }()

    /// The page size of the databases this program creates.
    public static let defaultPageSize = 16_384

    /// Creates an empty file with mode 0600 unless it exists, so SQLite (and its WAL files,
    /// which copy the database's mode) never make it readable by others.
    private static func createPrivately(_ path: String) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw SQLiteError(extendedCode: SQLITE_CANTOPEN, message: "cannot open \(path): \(reason)")
        }
        close(descriptor)
    }

    /// The version of SQLite in use (`3.40.1`).
    public static var sqliteVersion: String { String(cString: sqlite3_libversion()) }

    // MARK: Statements

    /// Runs one or more SQL statements that take no parameters.
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: text, sql: sql)
        }
    }

    /// Prepares one statement. `persistent` hints that it will be reused many times.
    public func prepare(_ sql: String, persistent: Bool = false) throws -> Statement {
        try Statement(database: self, sql: sql, persistent: persistent)
    }

    /// The statement for `sql`, prepared once per connection and reused (reset) on every later
    /// call: for the program's own statements run again and again (never user text).
    public func cached(_ sql: String) throws -> Statement {
        if let statement = statements[sql] {
            statement.reset()
            return statement
        }
        let statement = try prepare(sql, persistent: true)
        statements[sql] = statement
        return statement
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Whether a transaction is open.
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: Transactions

    public enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        case immediate = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws
    /// (and rethrows the body's error, not a rollback error).
    @discardableResult
    public func inTransaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind.rawValue) TRANSACTION")
        let result: T
        do {
            result = try body()
        } catch {
            rollbackQuietly()
            throw error
        }
        do {
            try execute("COMMIT TRANSACTION")
        } catch {
            rollbackQuietly()
            throw error
        }
        return result
    }

    /// Rolls back the open transaction, if any, ignoring errors (used on the failure path).
    public func rollbackQuietly() {
        if isInTransaction { _ = sqlite3_exec(handle, "ROLLBACK TRANSACTION", nil, nil, nil) }
    }

    // MARK: Write-ahead log

    /// Copies committed WAL frames into the database file without waiting for other connections
    /// (`PRAGMA wal_checkpoint(PASSIVE)`); returns the WAL's size in frames afterwards.
    @discardableResult
    public func checkpointPassively() throws -> (walFrames: Int, checkpointedFrames: Int) {
        var walFrames: Int32 = 0
        var checkpointed: Int32 = 0
        let code = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &walFrames, &checkpointed)
        guard code == SQLITE_OK else { throw error(code: code, sql: "PRAGMA wal_checkpoint(PASSIVE)") }
        return (Int(walFrames), Int(checkpointed))
    }

    /// Turns SQLite's automatic checkpoints off for this connection and instead records, at each
    /// commit, the WAL's size in frames (`walFramesAtLastCommit`). `PRAGMA wal_autocheckpoint = N`
    /// turns them back on (and ends the recording).
    public func recordWALSizeInsteadOfCheckpointing() {
        walFrames.pointee = 0
        // SQLite calls the hook after each commit with the frames in the WAL; the automatic
        // checkpoint is this same hook, so setting ours replaces it.
        sqlite3_wal_hook(
            handle,
            { context, _, _, frames in
                context?.assumingMemoryBound(to: Int32.self).pointee = frames
                return SQLITE_OK
            }, walFrames)
    }

    /// The WAL's size in frames after this connection's last commit, while
    /// `recordWALSizeInsteadOfCheckpointing` is in force (0 before its first commit).
    public var walFramesAtLastCommit: Int { Int(walFrames.pointee) }

    // MARK: Schema version

    /// `PRAGMA user_version`: the number of migrations applied.
    public var userVersion: Int {
        get throws { Int(try prepare("PRAGMA user_version").scalar()?.int64 ?? 0) }
    }

    /// Applies the migrations past the current `user_version`, each in its own transaction
    /// together with the version bump, so a crash never leaves a half-migrated schema.
    /// A database newer than these migrations is refused rather than misread.
    public func migrate(_ migrations: [String]) throws {
        let current = try userVersion
        guard current <= migrations.count else {
            throw SQLiteError(
                extendedCode: SQLITE_ERROR,
                message: "\(path) has schema version \(current), newer than this program knows (\(migrations.count)); upgrade audience-sync")
        }
        for (index, sql) in migrations.enumerated().dropFirst(current) {
            try inTransaction(.exclusive) {
                try execute(sql)
                try execute("PRAGMA user_version = \(index + 1)")
            }
        }
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(connection: handle, code: code, sql: sql)
    }
}
