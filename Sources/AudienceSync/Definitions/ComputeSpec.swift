/// How a computed trait's value is computed from a user's events (SPEC §4.4).
public struct ComputeSpec: Hashable, Sendable {
    public enum Operation: String, CaseIterable, Sendable {
        case count, sum, avg, min, max, first, last
        case mostFrequent = "most_frequent"
        case uniqueList = "unique_list"
        case uniqueCount = "unique_count"
    }

    public var op: Operation
    /// The `track` event counted or read.
    public var event: String
    /// The value read from each event (from the message root); nil only for `count`. Events where
    /// it is missing or null are not considered.
    public var property: PropertyPath?
    /// Every filter must hold for an event to be considered (`where`).
    public var filters: [PropertyFilter]
    public var window: EventWindow
    /// For `most_frequent`: a value must occur at least this often, else the user has no value.
    /// Always 1 for the other operations.
    public var minFrequency: Int

    public init(
        op: Operation, event: String, property: PropertyPath? = nil, filters: [PropertyFilter] = [],
        window: EventWindow = .allTime, minFrequency: Int = 1
    ) {
        self.op = op
        self.event = event
        self.property = property
        self.filters = filters
        self.window = window
        self.minFrequency = minFrequency
    }

    /// `unique_list` keeps at most this many values (the smallest, sorted).
    public static let uniqueListLimit = 100
}
