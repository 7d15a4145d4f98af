/// A database the engine keeps its events, their computation and the sync state in, seen through
/// the roles the engine needs: an `EventSink` writes events and identities, a `MembershipSource`
/// runs compiled statements, a `SyncStateStore` keeps snapshots, outbox and runs, and
/// `SyncLocking` keeps two syncs apart. The engine never sees a connection or a statement: each
/// store keeps its engine's tricks (SQLite's SQL functions, rowid read-back, checkpoint thread,
/// temporary-table merge) inside, as GRDB hides its connection behind `DatabaseReader` and
/// `DatabaseWriter`.
///
/// Every method may be called from any task; a store serialises the use of each connection itself.
public protocol Store: EventSink, MembershipSource, SyncStateStore, SyncLocking {
    /// Where the store is, as its user names it (a file path; a host and database), for messages.
    var location: String { get }
}

/// Whether a store is opened to be written or only read (`diff`, `members`, `status` change nothing).
public enum StoreAccess: Sendable {
    case readWrite
    /// Nothing can be written; a store that does not exist yet or has an older schema is an error.
    case readOnly
}
