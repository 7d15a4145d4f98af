/// The sync lock of a store (SPEC §6 step 1): one `sync` (or `retire`) at a time, across processes
/// and hosts. A holder that dies loses the lock with it: there is never a stale lock to clear.
public protocol SyncLocking: Sendable {
    /// Takes the lock at once and runs `body` holding it; throws a `.locked` error without running
    /// `body` when another process holds it.
    func withSyncLock<T>(_ body: () async throws -> T) async throws -> T
}
