import Logging

/// Where a configuration's `database:` puts the store: an SQLite file (SPEC §2), or a PostgreSQL
/// database (SPEC §12).
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// `database:` as written (a path already resolved against the configuration's folder, or a
    /// `postgres://` URL), with the PostgreSQL store's password and schema.
    public init(
        _ text: String, password: Secret? = nil, schema: String = PostgresLocation.defaultSchema
    ) throws {
        if PostgresLocation.isURL(text) {
            self = .postgres(try PostgresLocation(url: text, password: password, schema: schema))
        } else {
            self = .sqlite(path: text)
        }
    }

    /// The store the configuration names.
    public init(_ configuration: Configuration) throws {
        try self.init(
            configuration.databasePath, password: configuration.databasePassword, schema: configuration.databaseSchema)
    }

    /// Opens the store, runs `body` with it, and closes it however `body` ends.
    public func withStore<T>(access: StoreAccess, logger: Logger, _ body: (any Store) async throws -> T) async throws -> T {
        switch self {
        case .sqlite(let path):
            return try await body(try await SQLiteStore(path: path, access: access, logger: logger))
        case .postgres(let target):
            return try await PostgresStore.withStore(target, access: access, logger: logger) { try await body($0) }
        }
    }

    /// Whether the store exists: an SQLite file that is there (a server's database is assumed to).
    public var exists: Bool {
        switch self {
        case .sqlite(let path): return access(path, F_OK) == 0
        case .postgres: return true
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
