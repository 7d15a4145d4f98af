#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The sync lock of an SQLite store (SPEC §6 step 1): an exclusive `flock` on `<database>.lock`.
///
/// `flock` rather than a lock row in the database: the kernel releases it when the holder exits,
/// however it exits (kill -9, a crash, a reboot), so there is no stale lock to detect and no
/// heartbeat to keep; and taking it never waits on SQLite's own locks. The lock file itself is
/// left in place (deleting it would race with a process that has just opened it).
final class SQLiteSyncLock {
    private let descriptor: Int32
    let path: String

    /// Takes the lock at once, or throws a `.locked` error when another process holds it.
    init(databasePath: String) throws {
        path = databasePath + ".lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AudienceSyncError(.io, "cannot open the sync lock: \(String(cString: strerror(errno)))", file: path)
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            close(descriptor)
            if busy {
                throw AudienceSyncError(.locked, "another sync holds the lock of this database", file: path)
            }
            throw AudienceSyncError(.io, "cannot take the sync lock: \(reason)", file: path)
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

extension SQLiteStore {
    public func withSyncLock<T>(_ body: () async throws -> T) async throws -> T {
        let lock = try SQLiteSyncLock(databasePath: path)
        defer { withExtendedLifetime(lock) {} }
        return try await body()
    }
}
