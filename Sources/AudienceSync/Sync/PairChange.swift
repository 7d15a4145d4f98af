/// The counts of a pair's diff (SPEC §7): current state against the snapshot with pending outbox
/// work applied, which is what the snapshot will be once that work is delivered.
public struct PairCounts: Sendable, Equatable {
    /// Members now (audience) or users with a value now (computed trait).
    public var members = 0
    /// Rows of the acknowledged snapshot.
    public var synced = 0
    /// Audience: users who join; computed trait: users who get a value they had none of.
    public var entered = 0
    /// Audience: users who leave; computed trait: users whose value is gone (sent as null).
    public var exited = 0
    /// Computed trait: users whose value changes (always 0 for audiences).
    public var changed = 0
    public var unchanged = 0
    /// Messages of earlier runs still waiting to be delivered.
    public var pending = 0

    public var changes: Int { entered + exited + changed }
}

/// One change of a pair's diff.
public struct PairChange: Sendable, Equatable {
    public enum Kind: String, Sendable { case entered, exited, changed }
    public var userId: String
    public var kind: Kind
    /// The value to send, JSON text (`true`, `false`, `null`, `78.99`, …).
    public var value: String
    /// Whether acknowledging the change removes the user from the snapshot.
    public var removes: Bool
}
