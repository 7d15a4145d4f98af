/// One SQLite connection and the thread that is its only user: every use goes through `run`,
/// which the actor serialises on its own thread (`ThreadExecutor`), off Swift's cooperative pool.
/// SQLite's errors leave it as the library's (`SQLiteStore.storeError`).
actor SQLiteConnection {
    private let executor = ThreadExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let database: Database
    /// The database file, for messages.
    nonisolated let path: String

    /// Opens (and for `.readWrite`, creates) the database file with SQLite's page cache of
    /// `cacheMebibytes`.
    init(path: String, mode: Database.Mode, cacheMebibytes: Int) throws {
        self.path = path
        do {
            database = try Database(path: path, mode: mode)
            try database.execute("PRAGMA cache_size = -\(cacheMebibytes * 1024)")
        } catch {
            throw SQLiteStore.storeError(error, path: path)
        }
    }

    /// Runs `body` with the connection, on the connection's thread.
    func run<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do {
            return try body(database)
        } catch {
            throw SQLiteStore.storeError(error, path: path)
        }
    }
}
