/// One definition file: an audience or a computed trait (SPEC §4.1).
public struct Definition: Hashable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case audience
        case computedTrait = "computed_trait"
    }

    /// The display name, unique among enabled definitions.
    public var name: String
    /// The trait key sent to destinations: `key:`, else `TraitKey.snakeCase(name)`; matches
    /// `[a-z0-9_]+` and is unique among enabled definitions.
    public var key: String
    public var kind: Kind
    public var description: String?
    /// The membership condition; set exactly for audiences.
    public var condition: Condition?
    /// The value computation; set exactly for computed traits.
    public var compute: ComputeSpec?
    /// The destinations to sync to: `destinations:`, else every configured destination in the
    /// configuration's order. May be empty (a helper audience used only by `in_audience`).
    public var destinations: [String]
    /// The minimum time between syncs of this definition: `schedule:`, else the configuration's.
    public var schedule: Duration
    /// `enabled: false` keeps the file but leaves the definition out of every computation.
    public var enabled: Bool
    /// The file it was read from, as the user would name it (the definitions folder joined with
    /// the file name).
    public var file: String

    public init(
        name: String, key: String, kind: Kind, description: String? = nil, condition: Condition? = nil,
        compute: ComputeSpec? = nil, destinations: [String] = [], schedule: Duration = Configuration.defaultSchedule,
        enabled: Bool = true, file: String
    ) {
        self.name = name
        self.key = key
        self.kind = kind
        self.description = description
        self.condition = condition
        self.compute = compute
        self.destinations = destinations
        self.schedule = schedule
        self.enabled = enabled
        self.file = file
    }

    /// The definitions this one's condition refers to (`in_audience`, `computed`).
    public var references: [Condition.Reference] { condition?.references ?? [] }
}
