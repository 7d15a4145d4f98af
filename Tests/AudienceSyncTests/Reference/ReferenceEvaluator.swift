@testable import AudienceSync

/// The test oracle of SPEC §3.2 and §4: audience membership and computed-trait values computed in
/// plain Swift from a list of messages, one obvious step at a time, with no SQL.
///
/// It is deliberately slow and literal, so that a reader can check it against the SPEC line by
/// line; `DifferentialTests` compare the SQL engine with it. Where the SPEC leaves a choice open,
/// the choice is written at the place it is made (search for "Choice:"). In short:
/// - an alias's `previousId` is treated as an anonymous id (so is the alias's own `anonymousId`);
/// - sequences hold only the first step to the window; later steps need only exist at `now`;
/// - `count` has no value for a user with no matching event (never 0);
/// - computed values are scalars: an object or array at `property` is not considered;
/// - numbers are one value whatever their spelling (5 and 5.0) for `most_frequent` and `unique_*`;
/// - the order across types (`most_frequent` ties, `unique_list`): false < true < numbers < strings.
///
/// Strings are compared as UTF-8 bytes throughout — equality, order, prefixes, object keys — as
/// SQLite's BINARY collation does; Swift's `==` and `<` on `String` use canonical equivalence and
/// would call a precomposed and a decomposed "é" equal. Ids (user, anonymous, message) are kept in
/// Swift sets and dictionaries, so two ids that differ only in Unicode normalization would be
/// taken for one: the random cases never make such a pair.
struct ReferenceEvaluator {
    /// One stored message as the oracle sees it.
    struct Message {
        var type: String
        var messageId: String
        var time: Int64
        var userId: String?
        var anonymousId: String?
        var previousId: String?
        /// `event` of a track, `name` of a page or screen.
        var eventName: String?
        /// The whole message, for paths from the root.
        var body: JSONValue
    }

    let messages: [Message]
    let definitions: DefinitionSet

    /// Builds the oracle from valid Segment messages. Each needs `type`, `messageId` and an
    /// ISO-8601 `timestamp` (else `originalTimestamp`, `receivedAt`, `sentAt`); a repeated
    /// `messageId` is a duplicate and ignored, as ingest does. Invalid messages are a test bug.
    init(messages: [JSONValue], definitions: DefinitionSet) {
        var seen: Set<[UInt8]> = []
        var kept: [Message] = []
        for body in messages {
            let message = ReferenceEvaluator.message(body)
            if seen.insert(Array(message.messageId.utf8)).inserted { kept.append(message) }
        }
        self.messages = kept
        self.definitions = definitions
    }

    static func message(_ body: JSONValue) -> Message {
        /// A null or empty string counts as absent (SPEC §3.1).
        func text(_ key: String) -> String? {
            guard case .string(let value)? = field(body, key), !value.isEmpty else { return nil }
            return value
        }
        guard let type = text("type"), let messageId = text("messageId") else {
            preconditionFailure("a reference message needs a type and a messageId: \(body.jsonString)")
        }
        let times = ["timestamp", "originalTimestamp", "receivedAt", "sentAt"].compactMap { text($0) }
        guard let first = times.first, let time = Timestamp.parse(first) else {
            preconditionFailure("a reference message needs an ISO-8601 timestamp: \(body.jsonString)")
        }
        return Message(
            type: type, messageId: messageId, time: time, userId: text("userId"), anonymousId: text("anonymousId"),
            previousId: type == "alias" ? text("previousId") : nil,
            eventName: type == "track" ? text("event") : (type == "page" || type == "screen") ? text("name") : nil,
            body: body)
    }

    // MARK: The public questions

    /// The members of audience `key` at `now` (epoch milliseconds).
    func members(_ key: String, now: Int64) -> Set<String> {
        State(evaluator: self, now: now).members(key)
    }

    /// The values of computed trait `key` at `now`; users without a value are absent.
    func values(_ key: String, now: Int64) -> [String: Literal] {
        State(evaluator: self, now: now).values(key)
    }

    /// The users known at `now` (SPEC §4.2 "universe").
    func universe(now: Int64) -> Set<String> { State(evaluator: self, now: now).universe }

    /// The user an anonymous id belongs to at `now`, if any.
    func linkedUser(_ anonymousId: String, now: Int64) -> String? {
        State(evaluator: self, now: now).links[anonymousId]
    }

    /// The merged traits of `user` at `now` (an empty object when there are none).
    func traits(_ user: String, now: Int64) -> JSONValue { State(evaluator: self, now: now).traits(user) }

    /// The messages that concern `user` at `now` or later: their own, and those of every anonymous
    /// id they are ever linked with. For failure reports.
    func messages(concerning user: String) -> [Message] {
        var anonymous: Set<String> = []
        for message in messages where message.userId == user {
            if let id = message.anonymousId { anonymous.insert(id) }
            if let id = message.previousId { anonymous.insert(id) }
        }
        return messages.filter { message in
            message.userId == user || message.anonymousId.map(anonymous.contains) == true
                || message.previousId.map(anonymous.contains) == true
        }.sorted(by: inOrder)
    }

    // MARK: Evaluation at one `now`

    /// Everything that exists at one `now`, with the definitions' results cached.
    final class State {
        let evaluator: ReferenceEvaluator
        let now: Int64
        /// Messages with event time ≤ now, in (time, messageId) order.
        let visible: [Message]
        /// Anonymous id → the user it belongs to at now.
        let links: [String: String]
        let universe: Set<String>
        /// User → their messages (own, and anonymous-only ones of their linked ids), in order.
        let messagesByUser: [String: [Message]]
        private var memberCache: [String: Set<String>] = [:]
        private var valueCache: [String: [String: Literal]] = [:]

        init(evaluator: ReferenceEvaluator, now: Int64) {
            self.evaluator = evaluator
            self.now = now
            // SPEC §3.2: messages after `now` do not exist yet — events, traits and links alike.
            visible = evaluator.messages.filter { $0.time <= now }.sorted(by: inOrder)

            // Links: both ids on one message; an alias links previousId (and its own anonymousId).
            // The earliest link by event time wins; ties by messageId, then userId (bytes).
            var best: [String: (time: Int64, messageId: String, userId: String)] = [:]
            for message in visible {
                guard let user = message.userId else { continue }
                let anonymous = [message.anonymousId, message.previousId].compactMap { $0 }
                for id in anonymous {
                    if let current = best[id] {
                        let earlier =
                            message.time != current.time
                            ? message.time < current.time
                            : compareBytes(message.messageId, current.messageId) != 0
                                ? compareBytes(message.messageId, current.messageId) < 0
                                : compareBytes(user, current.userId) < 0
                        if !earlier { continue }
                    }
                    best[id] = (message.time, message.messageId, user)
                }
            }
            let links = best.mapValues(\.userId)
            self.links = links
            universe = Set(visible.compactMap(\.userId))

            var byUser: [String: [Message]] = [:]
            for message in visible {
                // A message's user: its userId, else the user its anonymous id is linked to at now
                // (a link made after the event counts; only the link's own time matters).
                guard let user = message.userId ?? message.anonymousId.flatMap({ links[$0] }) else { continue }
                byUser[user, default: []].append(message)
            }
            messagesByUser = byUser
        }

        // MARK: Traits (SPEC §3.2)

        /// The `traits` of the user's identifies — their own, and those of their linked anonymous
        /// ids that carry no userId — merged in (time, messageId) order, key by key, later wins;
        /// a nested object is replaced whole. Traits that are not an object contribute nothing.
        func traits(_ user: String) -> JSONValue {
            var merged: [JSONValue.Member] = []
            for message in messagesByUser[user] ?? [] where message.type == "identify" {
                guard case .object(let members)? = field(message.body, "traits") else { continue }
                for member in distinctMembers(members) {
                    if let index = merged.firstIndex(where: { sameBytes($0.key, member.key) }) {
                        merged[index].value = member.value
                    } else {
                        merged.append(member)
                    }
                }
            }
            return .object(merged)
        }

        // MARK: Audiences

        func members(_ key: String) -> Set<String> {
            if let cached = memberCache[key] { return cached }
            guard let definition = evaluator.definitions[key: key], let condition = definition.condition else {
                preconditionFailure("no audience '\(key)'")
            }
            let result = holds(condition)
            memberCache[key] = result
            return result
        }

        /// The users of the universe for whom `condition` holds.
        func holds(_ condition: Condition) -> Set<String> {
            switch condition {
            case .all(let conditions):
                return conditions.dropFirst().reduce(holds(conditions[0])) { $0.intersection(holds($1)) }
            case .any(let conditions):
                return conditions.reduce(into: Set<String>()) { $0.formUnion(holds($1)) }
            case .not(let inner):
                return universe.subtracting(holds(inner))
            case .performed(let event):
                // The count predicate is tested for every user of the universe, 0 included.
                return universe.filter { user in
                    let count = (messagesByUser[user] ?? []).count { message in
                        matches(message, kind: event.kind, name: event.name, filters: event.filters)
                            && inWindow(message.time, event.window)
                    }
                    return satisfies(event.count, .number(.integer(Int64(count))))
                }
            case .trait(let path, let predicate):
                return universe.filter { satisfies(predicate, Value(lookup(traits($0), path.keys))) }
            case .computed(let key, let predicate):
                let values = values(key)
                // A user without a value: positive operators false, negations true.
                return universe.filter { satisfies(predicate, values[$0].map(Value.init) ?? .missing) }
            case .inAudience(let key):
                return members(key)
            case .sequence(let steps, let window):
                return universe.filter { performedSequence($0, steps: steps, window: window) }
            }
        }

        /// Whether `message` is a `track`/`page`/`screen` named `name` on which every filter holds.
        func matches(_ message: Message, kind: EventKind, name: String, filters: [PropertyFilter]) -> Bool {
            guard message.type == kind.rawValue, let eventName = message.eventName, sameBytes(eventName, name) else {
                return false
            }
            return filters.allSatisfy { satisfies($0.predicate, Value(lookup(message.body, $0.path.keys))) }
        }

        /// SPEC §4.2 windows, written out from the SPEC rather than taken from `EventWindow.bounds`.
        func inWindow(_ time: Int64, _ window: EventWindow) -> Bool {
            guard time <= now else { return false }
            switch window {
            case .allTime: return true
            case .within(let duration): return now - duration.milliseconds < time
            case .betweenAgo(let near, let far):
                return now - far.milliseconds < time && time <= now - near.milliseconds
            case .between(let start, let end): return start <= time && time < end
            }
        }

        /// SPEC §4.3: a chain of events, one per step, each strictly later than the previous and,
        /// where the step says `within_previous`, at most that long after it; the first step's event
        /// in `window`.
        ///
        /// Choice: only the first step is held to the window; later steps need only exist at `now`.
        func performedSequence(_ user: String, steps: [SequenceStep], window: EventWindow) -> Bool {
            let events = messagesByUser[user] ?? []
            // The times at which a chain of the steps so far can end.
            var ends = events.filter {
                matches($0, kind: steps[0].kind, name: steps[0].name, filters: steps[0].filters)
                    && inWindow($0.time, window)
            }.map(\.time)
            for step in steps.dropFirst() {
                if ends.isEmpty { return false }
                let previous = ends
                ends = events.filter { message in
                    matches(message, kind: step.kind, name: step.name, filters: step.filters)
                        && previous.contains { end in
                            end < message.time
                                && (step.withinPrevious.map { message.time - end <= $0.milliseconds } ?? true)
                        }
                }.map(\.time)
            }
            return !ends.isEmpty
        }

        // MARK: Computed traits (SPEC §4.4)

        func values(_ key: String) -> [String: Literal] {
            if let cached = valueCache[key] { return cached }
            guard let definition = evaluator.definitions[key: key], let spec = definition.compute else {
                preconditionFailure("no computed trait '\(key)'")
            }
            var result: [String: Literal] = [:]
            for user in universe {
                let events = (messagesByUser[user] ?? []).filter {
                    matches($0, kind: .track, name: spec.event, filters: spec.filters) && inWindow($0.time, spec.window)
                }
                if let value = compute(spec, events) { result[user] = value }
            }
            valueCache[key] = result
            return result
        }

        /// The value of one user from their matching events (in (time, messageId) order); nil when
        /// they have none.
        func compute(_ spec: ComputeSpec, _ events: [Message]) -> Literal? {
            if spec.op == .count {
                // "A user with no such event has no value" — for count too: never a 0.
                return events.isEmpty ? nil : .integer(Int64(events.count))
            }
            guard let property = spec.property else { preconditionFailure("\(spec.op) without a property") }
            // Considered: events where the property is present and not null.
            // Choice: objects and arrays are not considered either (a value is a JSON number, string
            // or boolean, SPEC §4.4); the random cases never put one at a computed property.
            let values: [Value] = events.compactMap { event in
                let value = Value(lookup(event.body, property.keys))
                switch value {
                case .missing, .null, .other: return nil
                case .bool, .number, .string: return value
                }
            }
            let numbers: [Number] = values.compactMap {
                if case .number(let number) = $0 { return number }
                return nil
            }
            switch spec.op {
            case .count:
                return nil  // handled above
            case .sum:
                // Booleans and numeric strings are not numbers. No numeric value: no value.
                guard !numbers.isEmpty else { return nil }
                return Number.sum(numbers).literal
            case .avg:
                guard !numbers.isEmpty else { return nil }
                return .double(Number.sum(numbers).double / Double(numbers.count))
            case .min:
                return numbers.min(by: { $0.less(than: $1) })?.literal
            case .max:
                return numbers.max(by: { $0.less(than: $1) })?.literal
            case .first:
                return values.first?.literal
            case .last:
                return values.last?.literal
            case .mostFrequent:
                // Groups of equal values (numbers by value: 5 and 5.0 are one value).
                var groups: [(value: Value, count: Int)] = []
                for value in values {
                    if let index = groups.firstIndex(where: { $0.value.equals(value) }) {
                        groups[index].count += 1
                    } else {
                        groups.append((value, 1))
                    }
                }
                guard let top = groups.map(\.count).max(), top >= spec.minFrequency else { return nil }
                let tied = groups.filter { $0.count == top }.map(\.value)
                return tied.min(by: { $0.sortsBefore($1) })?.literal
            case .uniqueList:
                let distinct = Value.distinctSorted(values)
                guard !distinct.isEmpty else { return nil }
                return .list(distinct.prefix(ComputeSpec.uniqueListLimit).compactMap(\.literal))
            case .uniqueCount:
                let distinct = Value.distinctSorted(values)
                return distinct.isEmpty ? nil : .integer(Int64(distinct.count))
            }
        }

        // MARK: Predicates (SPEC §4.2)

        /// Every comparison of `predicate` holds for `value`.
        func satisfies(_ predicate: Predicate, _ value: Value) -> Bool {
            predicate.comparisons.allSatisfy { holds($0, value) }
        }

        func holds(_ comparison: Predicate.Comparison, _ value: Value) -> Bool {
            switch comparison {
            case .eq(let operand): return value.equals(Value(operand))
            case .ne(let operand): return !value.equals(Value(operand))
            case .gt(let operand): return value.order(Value(operand)).map { $0 > 0 } ?? false
            case .gte(let operand): return value.order(Value(operand)).map { $0 >= 0 } ?? false
            case .lt(let operand): return value.order(Value(operand)).map { $0 < 0 } ?? false
            case .lte(let operand): return value.order(Value(operand)).map { $0 <= 0 } ?? false
            case .in(let operands): return operands.contains { value.equals(Value($0)) }
            case .notIn(let operands): return !operands.contains { value.equals(Value($0)) }
            case .contains(let text): return value.string.map { containsBytes($0, text) } ?? false
            case .notContains(let text): return !(value.string.map { containsBytes($0, text) } ?? false)
            case .startsWith(let text): return value.string.map { Array($0.utf8).starts(with: text.utf8) } ?? false
            case .endsWith(let text):
                return value.string.map { Array($0.utf8).reversed().starts(with: Array(text.utf8).reversed()) } ?? false
            case .exists(let flag):
                switch value {
                case .missing, .null: return !flag
                default: return flag
                }
            }
        }
    }
}

// MARK: Values

extension ReferenceEvaluator {
    /// A JSON number: an integer when its text has no fraction or exponent and fits in 64 bits (as
    /// SQLite reads JSON), else a double. Integers and doubles compare with each other by value.
    enum Number {
        case integer(Int64)
        case double(Double)

        init?(json text: String) {
            if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let value = Int64(text) {
                self = .integer(value)
            } else if let value = Double(text) {
                self = .double(value)
            } else {
                return nil
            }
        }

        var double: Double {
            switch self {
            case .integer(let value): return Double(value)
            case .double(let value): return value
            }
        }

        var literal: Literal {
            switch self {
            case .integer(let value): return .integer(value)
            case .double(let value): return .double(value)
            }
        }

        /// -1, 0, 1. Two integers compare exactly; otherwise as doubles (the random cases keep
        /// integers far below 2^53, where that is exact).
        func compare(_ other: Number) -> Int {
            if case .integer(let a) = self, case .integer(let b) = other { return a < b ? -1 : a == b ? 0 : 1 }
            let a = double
            let b = other.double
            return a < b ? -1 : a == b ? 0 : 1
        }

        func less(than other: Number) -> Bool { compare(other) < 0 }

        /// An integer sum while every term is an integer, else a double.
        static func sum(_ numbers: [Number]) -> Number {
            var integer: Int64 = 0
            var allIntegers = true
            var double = 0.0
            for number in numbers {
                double += number.double
                if case .integer(let value) = number, allIntegers {
                    let (sum, overflow) = integer.addingReportingOverflow(value)
                    if overflow { allIntegers = false } else { integer = sum }
                } else {
                    allIntegers = false
                }
            }
            return allIntegers ? .integer(integer) : .double(double)
        }
    }

    /// What a predicate sees: a missing path, JSON null, a boolean, a number, a string, or something
    /// else present (an object or array, a list value of `unique_list`) that no comparison accepts.
    enum Value {
        case missing
        case null
        case bool(Bool)
        case number(Number)
        case string(String)
        case other

        init(_ json: JSONValue?) {
            switch json {
            case nil: self = .missing
            case .null?: self = .null
            case .bool(let value)?: self = .bool(value)
            case .number(let text)?: self = Number(json: text).map(Value.number) ?? .other
            case .string(let value)?: self = .string(value)
            case .array?, .object?: self = .other
            }
        }

        init(_ literal: Literal) {
            switch literal {
            case .null: self = .null
            case .bool(let value): self = .bool(value)
            case .integer(let value): self = .number(.integer(value))
            case .double(let value): self = .number(.double(value))
            case .string(let value): self = .string(value)
            case .list: self = .other
            }
        }

        var string: String? {
            if case .string(let value) = self { return value }
            return nil
        }

        var literal: Literal? {
            switch self {
            case .bool(let value): return .bool(value)
            case .number(let number): return number.literal
            case .string(let value): return .string(value)
            case .missing, .null, .other: return nil
            }
        }

        /// Strict equality: booleans with booleans, numbers with numbers (by value), strings with
        /// strings (by bytes). Nothing equals a missing, null or other value.
        func equals(_ other: Value) -> Bool {
            switch (self, other) {
            case (.bool(let a), .bool(let b)): return a == b
            case (.number(let a), .number(let b)): return a.compare(b) == 0
            case (.string(let a), .string(let b)): return sameBytes(a, b)
            default: return false
            }
        }

        /// The order of `gt`/`gte`/`lt`/`lte`: numbers with numbers, strings with strings by UTF-8 bytes
        /// (SQLite's BINARY collation, which is also Unicode code point order); nil for anything else.
        func order(_ other: Value) -> Int? {
            switch (self, other) {
            case (.number(let a), .number(let b)): return a.compare(b)
            case (.string(let a), .string(let b)): return compareBytes(a, b)
            default: return nil
            }
        }

        /// Choice: the order of `most_frequent` ties and of `unique_list`, across types:
        /// false < true < every number < every string; numbers by value, strings by UTF-8 bytes.
        /// Numbers before strings as SQLite sorts them; booleans, which SQLite has not, first.
        func sortsBefore(_ other: Value) -> Bool {
            func rank(_ value: Value) -> Int {
                switch value {
                case .bool(false): return 0
                case .bool(true): return 1
                case .number: return 2
                case .string: return 3
                default: return 4
                }
            }
            if rank(self) != rank(other) { return rank(self) < rank(other) }
            return (order(other) ?? 0) < 0
        }

        /// The distinct values (by `equals`), sorted by `sortsBefore`.
        static func distinctSorted(_ values: [Value]) -> [Value] {
            var distinct: [Value] = []
            for value in values where !distinct.contains(where: { $0.equals(value) }) { distinct.append(value) }
            return distinct.sorted { $0.sortsBefore($1) }
        }
    }

}

// MARK: JSON helpers

/// The member `key` of an object (the first one with that key, as SQLite's JSON functions find).
private func field(_ value: JSONValue, _ key: String) -> JSONValue? {
    guard case .object(let members) = value else { return nil }
    return members.first { sameBytes($0.key, key) }?.value
}

/// The value at `keys` below `root`, through objects only; nil when any step is missing or not an object.
private func lookup(_ root: JSONValue, _ keys: [String]) -> JSONValue? {
    var current = root
    for key in keys {
        guard let next = field(current, key) else { return nil }
        current = next
    }
    return current
}

/// An object's members with repeated keys dropped (the first is kept, as `field` reads them).
private func distinctMembers(_ members: [JSONValue.Member]) -> [JSONValue.Member] {
    var seen: Set<[UInt8]> = []
    return members.filter { seen.insert(Array($0.key.utf8)).inserted }
}

/// Event-time order, ties by messageId (bytes).
private func inOrder(_ a: ReferenceEvaluator.Message, _ b: ReferenceEvaluator.Message) -> Bool {
    a.time != b.time ? a.time < b.time : compareBytes(a.messageId, b.messageId) < 0
}

private func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

private func compareBytes(_ a: String, _ b: String) -> Int {
    if a.utf8.elementsEqual(b.utf8) { return 0 }
    return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
}

/// Whether `needle`'s bytes occur in `haystack`'s (always, for an empty needle).
private func containsBytes(_ haystack: String, _ needle: String) -> Bool {
    let h = Array(haystack.utf8)
    let n = Array(needle.utf8)
    if n.isEmpty { return true }
    if n.count > h.count { return false }
    for start in 0...(h.count - n.count) where h[start..<(start + n.count)].elementsEqual(n) { return true }
    return false
}
