/// A membership condition of an audience (SPEC §4.2), as a tree a compiler turns into one SQL query.
public indirect enum Condition: Hashable, Sendable {
    /// Every sub-condition holds (at least one sub-condition).
    case all([Condition])
    /// At least one sub-condition holds (at least one sub-condition).
    case any([Condition])
    /// The condition does not hold; ranges over every known user (SPEC §4.2 "universe").
    case not(Condition)
    /// The user has events matching; `performed`, `performed_page`, `performed_screen`.
    case performed(EventCondition)
    /// The user's current trait at `path` (inside the traits object) satisfies the predicate.
    case trait(PropertyPath, Predicate)
    /// The value of computed trait `key` satisfies the predicate.
    case computed(key: String, Predicate)
    /// The user is a member of audience `key` at the same `now`.
    case inAudience(key: String)
    /// The user performed the steps in order; the first step's event lies in `window`.
    case sequence(steps: [SequenceStep], window: EventWindow)

    /// The definitions this condition refers to, in the order written (with repeats).
    public var references: [Reference] {
        switch self {
        case .all(let conditions), .any(let conditions): return conditions.flatMap(\.references)
        case .not(let condition): return condition.references
        case .computed(let key, _): return [.computedTrait(key)]
        case .inAudience(let key): return [.audience(key)]
        case .performed, .trait, .sequence: return []
        }
    }

    /// A reference from a condition to another definition.
    public enum Reference: Hashable, Sendable {
        case audience(String)
        case computedTrait(String)

        public var key: String {
            switch self {
            case .audience(let key), .computedTrait(let key): return key
            }
        }
    }
}

/// The type of message a `performed` condition matches.
public enum EventKind: String, CaseIterable, Sendable {
    /// `track` messages, matched by their `event`.
    case track
    /// `page` messages, matched by their `name`.
    case page
    /// `screen` messages, matched by their `name`.
    case screen

    /// The condition head that selects this kind: `performed`, `performed_page`, `performed_screen`.
    public var head: String {
        switch self {
        case .track: return "performed"
        case .page: return "performed_page"
        case .screen: return "performed_screen"
        }
    }
}

/// A test on one value of an event: `properties.currency: USD`.
public struct PropertyFilter: Hashable, Sendable {
    /// From the message root: `properties.total`, `context.page.path`.
    public var path: PropertyPath
    public var predicate: Predicate

    public init(path: PropertyPath, predicate: Predicate) {
        self.path = path
        self.predicate = predicate
    }
}

/// `performed: EVENT` with its modifiers.
public struct EventCondition: Hashable, Sendable {
    public var kind: EventKind
    /// The `event` of a track, the `name` of a page or screen.
    public var name: String
    /// Every filter must hold for an event to match (`where`).
    public var filters: [PropertyFilter]
    /// The test on the number of matching events per user; `{gte: 1}` unless written. Evaluated
    /// for every user of the universe, 0 included.
    public var count: Predicate
    /// Whether `count` was written (a compiler may take the plain `EXISTS` path when it was not).
    public var countGiven: Bool
    public var window: EventWindow

    public init(
        kind: EventKind, name: String, filters: [PropertyFilter] = [], count: Predicate? = nil,
        window: EventWindow = .allTime
    ) {
        self.kind = kind
        self.name = name
        self.filters = filters
        self.count = count ?? .atLeastOne
        self.countGiven = count != nil
        self.window = window
    }
}

/// One step of a funnel (SPEC §4.3).
public struct SequenceStep: Hashable, Sendable {
    public var kind: EventKind
    public var name: String
    public var filters: [PropertyFilter]
    /// The step's event is at most this long after the previous step's (never on the first step).
    public var withinPrevious: Duration?

    public init(kind: EventKind, name: String, filters: [PropertyFilter] = [], withinPrevious: Duration? = nil) {
        self.kind = kind
        self.name = name
        self.filters = filters
        self.withinPrevious = withinPrevious
    }
}

/// Which event times count, relative to the evaluation time `now` (SPEC §4.2). Events after `now`
/// never count.
public enum EventWindow: Hashable, Sendable {
    /// Every event up to `now` (no `within`/`between_ago`/`between`).
    case allTime
    /// `within: D` — event time in `(now − D, now]`.
    case within(Duration)
    /// `between_ago: [NEAR, FAR]` — event time in `(now − far, now − near]`; `near <= far`.
    case betweenAgo(near: Duration, far: Duration)
    /// `between: [START, END]` — event time in `[start, end)`, in epoch milliseconds; `start < end`.
    case between(startMillis: Int64, endMillis: Int64)

    /// The window at `now` as event times `t` with `after < t <= through` (`after` nil: no lower
    /// bound), in epoch milliseconds. Already capped at `now`; empty when `through <= after`.
    public func bounds(now: Int64) -> (after: Int64?, through: Int64) {
        switch self {
        case .allTime: return (nil, now)
        case .within(let duration): return (now - duration.milliseconds, now)
        case .betweenAgo(let near, let far): return (now - far.milliseconds, now - near.milliseconds)
        case .between(let start, let end): return (start - 1, min(end - 1, now))
        }
    }
}
