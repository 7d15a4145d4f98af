/// Computes audience membership and computed-trait values inside SQLite (SPEC §4), as of a time
/// `now`, with one set-based query per definition.
public final class MembershipEngine {
    public let store: EventStore
    public let definitions: DefinitionSet

    public init(store: EventStore, definitions: DefinitionSet) {
        self.store = store
        self.definitions = definitions
    }

    /// The members of audience `key` at `now`, sorted by user id.
    public func members(key: String, now: Int64) throws -> [String] {
        throw AudienceSyncError(.definition, "membership computation is not implemented yet")
    }

    /// The values of computed trait `key` at `now`, by user id; users without a value are absent.
    public func values(key: String, now: Int64) throws -> [String: Literal] {
        throw AudienceSyncError(.definition, "computed traits are not implemented yet")
    }
}
