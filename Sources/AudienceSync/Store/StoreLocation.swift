import Logging

/// Where a configuration's `database:` puts the store: an SQLite file (SPEC §2), or — not in this
/// version — a PostgreSQL database (SPEC §12).
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// `database:` as written (a path already resolved against the configuration's folder).
    public init(_ text: String) {
        let lowered = text.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Opens the store, runs `body` with it, and closes it however `body` ends.
    public func withStore<T>(access: StoreAccess, logger: Logger, _ body: (any Store) async throws -> T) async throws -> T {
        switch self {
        case .sqlite(let path):
            return try await body(try await SQLiteStore(path: path, access: access, logger: logger))
        case .postgres:
            throw AudienceSyncError(
                .configuration, "database: PostgreSQL stores are not supported by this version (SPEC §12); use an SQLite file")
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
