/// Compiles definitions into single SQL statements (SPEC §4): an audience into the sorted set of
/// its members, a computed trait into `(uid, value)` rows with the value as JSON text.
///
/// Each condition becomes a query returning one column `uid`; `all`, `any` and `not` combine them
/// with INTERSECT, UNION and EXCEPT from the universe. Definitions referred to by `in_audience` and
/// `computed` become CTEs of the same statement. Every user-supplied value — event names, JSON
/// paths, literals — is a bind, never SQL text; `now` is bind 1. Whatever the engines spell
/// differently comes from the `dialect`; the SQL written here reads the same in SQLite and
/// PostgreSQL.
struct QueryCompiler {
    let definitions: DefinitionSet
    let dialect: any SQLDialect
    private(set) var binds: [SQLValue]
    /// CTEs in dependency order, by name.
    private var ctes: [(name: String, sql: String)] = []
    private var cteNames: Set<String> = []
    /// Derived tables named so far (for the aliases some engines need).
    private var derivedTables = 0
    /// The placeholder of bind 1: the evaluation time.
    let now: String

    init(definitions: DefinitionSet, dialect: any SQLDialect, now: Int64) {
        self.definitions = definitions
        self.dialect = dialect
        binds = [.integer(now)]
        self.now = dialect.placeholder(1)
    }

    /// A placeholder for `value`, appended to the binds.
    mutating func bind(_ value: SQLValue) -> String {
        binds.append(value)
        return dialect.placeholder(binds.count)
    }

    /// A placeholder for a number literal.
    private mutating func bindNumber(_ literal: Literal) -> String {
        switch literal {
        case .integer(let value): return bind(.integer(value))
        case .double(let value): return bind(.real(value))
        case .string, .bool, .null, .list: preconditionFailure("not a number: \(literal)")
        }
    }

    /// `(sql)` as a derived table of a FROM clause.
    mutating func from(_ sql: String) -> String {
        derivedTables += 1
        return dialect.derived(sql, alias: "d\(derivedTables)")
    }

    /// The compiled statement: `body` preceded by the universe and every CTE asked for, with the binds.
    func query(_ body: String) -> CompiledQuery {
        var all = ["universe AS MATERIALIZED (SELECT user_id AS uid FROM users WHERE first_seen <= \(now))"]
        all += ctes.map { "\($0.name) AS MATERIALIZED (\($0.sql))" }
        return CompiledQuery(sql: "WITH " + all.joined(separator: ",\n") + "\n" + body, binds: binds)
    }

    /// The full statement for `definition`: members (`uid`), or values (`uid`, `value`), ordered
    /// by the bytes of the user ids.
    mutating func statement(for definition: Definition) -> CompiledQuery {
        let body: String
        switch definition.kind {
        case .audience:
            // The fence keeps SQLite from flattening the set into this query. Flattened, GROUP BY and
            // ORDER BY would both be on the set's `uid` expression, a `coalesce` with a subquery,
            // which SQLite never takes for equal to itself: it sorted the members twice (and
            // evaluated the expression for each of WHERE, GROUP BY and the result).
            let set = from(audienceSet(definition) + dialect.noFlattenFence)
            body = "SELECT uid FROM \(set) WHERE uid IS NOT NULL GROUP BY uid ORDER BY \(dialect.byteOrdered("uid"))"
        case .computedTrait:
            body = "SELECT uid, value FROM \(from(computedValues(definition))) ORDER BY \(dialect.byteOrdered("uid"))"
        }
        return query(body)
    }

    // MARK: Identity (SPEC §3.2)

    /// The user the anonymous id `anonymousId` (an SQL expression) is linked to at `now`: its
    /// earliest link with event time ≤ now, ties by messageId, then user id; NULL when it has none.
    /// The one statement of the link rule; the lookup is a seek on `identity_links`' key.
    func linkedUser(of anonymousId: String) -> String {
        """
        (SELECT il.user_id FROM identity_links il
            WHERE il.anonymous_id = \(anonymousId) AND il.ts <= \(now)
            ORDER BY il.ts, \(dialect.byteOrdered("il.message_id")), \(dialect.byteOrdered("il.user_id")) LIMIT 1)
        """
    }

    /// The user an event of the `events` row `alias` counts for at `now`: its userId, else the user
    /// its anonymousId is linked to (`coalesce` looks the link up only for events without a userId).
    func resolvedUser(_ alias: String) -> String {
        "coalesce(\(alias).user_id, \(linkedUser(of: "\(alias).anonymous_id")))"
    }

    // MARK: Audiences

    /// The members of an audience definition, as a query of `uid`.
    mutating func audienceSet(_ definition: Definition) -> String {
        guard let condition = definition.condition else { return "SELECT NULL AS uid WHERE \(dialect.alwaysFalse)" }
        return set(condition)
    }

    /// The users for whom `condition` holds, as a query returning `uid` (possibly with repeats).
    mutating func set(_ condition: Condition) -> String {
        switch condition {
        case .all(let conditions):
            // Every condition's users lie in the universe, so `all: [A, not B]` is A EXCEPT B: no
            // need to build the universe minus B first. Compound operators apply left to right,
            // so the positive conditions come first.
            var positive: [String] = []
            var negated: [String] = []
            for condition in conditions {
                if case .not(let inner) = condition {
                    negated.append(set(inner))
                } else {
                    positive.append(set(condition))
                }
            }
            guard !positive.isEmpty else {
                var parts: [String] = []
                for condition in conditions { parts.append("SELECT uid FROM \(from(set(condition)))") }
                return parts.joined(separator: " INTERSECT ")
            }
            var sql = ""
            for (index, part) in positive.enumerated() {
                sql += (index == 0 ? "" : " INTERSECT ") + "SELECT uid FROM \(from(part))"
            }
            for part in negated { sql += " EXCEPT SELECT uid FROM \(from(part))" }
            return sql
        case .any(let conditions):
            var parts: [String] = []
            for condition in conditions { parts.append("SELECT uid FROM \(from(set(condition)))") }
            return parts.joined(separator: " UNION ")
        case .not(let inner):
            return "SELECT uid FROM universe EXCEPT SELECT uid FROM \(from(set(inner)))"
        case .performed(let event):
            return performed(event)
        case .trait(let path, let predicate):
            return trait(path, predicate)
        case .computed(let key, let predicate):
            let name = reference(computedTrait: key)
            let test = self.test(predicate, on: .json("c.value"))
            if Self.holdsForMissing(predicate) {
                // Users without a value pass: everyone but those whose value fails.
                return "SELECT uid FROM universe EXCEPT SELECT c.uid FROM \(name) c WHERE NOT \(test)"
            }
            return "SELECT c.uid FROM \(name) c WHERE \(test)"
        case .inAudience(let key):
            return "SELECT uid FROM \(reference(audience: key))"
        case .sequence(let steps, let window):
            return sequence(steps, window: window)
        }
    }

    /// Whether a predicate holds for a missing value (then users without one must be considered).
    static func holdsForMissing(_ predicate: Predicate) -> Bool {
        predicate.comparisons.allSatisfy(\.isNegative)
    }

    private mutating func performed(_ event: EventCondition) -> String {
        let events = matchingEvents(kind: event.kind, name: event.name, filters: event.filters, window: event.window)
        if !event.countGiven {
            return "SELECT uid FROM \(from(events)) WHERE uid IS NOT NULL"
        }
        let count = test(event.count, on: .count("m.n"))
        let counts = "SELECT m.uid FROM (SELECT uid, count(*) AS n FROM \(from(events)) WHERE uid IS NOT NULL GROUP BY uid) m"
        if Self.count(event.count, holdsFor: 0) {
            // Users with no matching event pass: everyone but those whose count fails.
            return "SELECT uid FROM universe EXCEPT\n\(counts)\nWHERE NOT \(count)"
        }
        return "\(counts)\nWHERE \(count)"
    }

    /// Whether a `count` predicate holds for 0 events (then users who never performed the event
    /// match, and the universe must be scanned).
    static func count(_ predicate: Predicate, holdsFor value: Int64) -> Bool {
        predicate.comparisons.allSatisfy { comparison in
            func number(_ literal: Literal) -> Double? { literal.doubleValue }
            let v = Double(value)
            switch comparison {
            case .eq(let x): return number(x) == v
            case .ne(let x): return number(x) != v
            case .gt(let x): return number(x).map { v > $0 } ?? false
            case .gte(let x): return number(x).map { v >= $0 } ?? false
            case .lt(let x): return number(x).map { v < $0 } ?? false
            case .lte(let x): return number(x).map { v <= $0 } ?? false
            case .in(let xs): return xs.contains { number($0) == v }
            case .notIn(let xs): return !xs.contains { number($0) == v }
            case .contains, .startsWith, .endsWith: return false
            case .notContains: return true
            case .exists(let flag): return flag
            }
        }
    }

    /// Events of `kind` named `name` in `window` whose message passes every filter, each with the
    /// user it counts for (`uid`, NULL for unlinked anonymous events): a query of (`uid`, `ts`,
    /// `mid`, `message`).
    mutating func matchingEvents(kind: EventKind, name: String, filters: [PropertyFilter], window: EventWindow)
        -> String
    {
        var conditions = ["e.type = \(bind(.text(kind.rawValue)))", "e.event = \(bind(.text(name)))"]
        let (after, through) = windowBounds(window)
        conditions.append("e.ts <= \(through)")
        if let after { conditions.append("e.ts > \(after)") }
        for filter in filters {
            conditions.append(test(filter.predicate, on: .message("e.message", filter.path)))
        }
        return """
            SELECT \(resolvedUser("e")) AS uid, e.ts AS ts, e.message_id AS mid, e.message AS message
            FROM events e
            WHERE \(conditions.joined(separator: " AND "))
            """
    }

    /// SQL for the window's bounds at `now`: `(after, through]`.
    private mutating func windowBounds(_ window: EventWindow) -> (after: String?, through: String) {
        switch window {
        case .allTime: return (nil, now)
        case .within(let duration): return ("(\(now) - \(bind(.integer(duration.milliseconds))))", now)
        case .betweenAgo(let near, let far):
            return (
                "(\(now) - \(bind(.integer(far.milliseconds))))", "(\(now) - \(bind(.integer(near.milliseconds))))"
            )
        case .between(let start, let end):
            return (bind(.integer(start - 1)), dialect.least(bind(.integer(end - 1)), now))
        }
    }

    private mutating func trait(_ path: PropertyPath, _ predicate: Predicate) -> String {
        // Traits merge key by key, so the top-level key decides which identify is in force; a
        // nested path is then read inside that identify's value (nested objects replaced whole).
        let current = currentTraits(path)
        let test = self.test(predicate, on: .message("t.message", PropertyPath(["traits"] + path.keys)))
        if Self.holdsForMissing(predicate) {
            // Users without the trait pass: everyone but those whose value fails.
            return "SELECT uid FROM universe EXCEPT SELECT t.uid FROM (\(current)) t WHERE NOT \(test)"
        }
        return "SELECT t.uid FROM (\(current)) t WHERE \(test)"
    }

    /// For each user, the identify message whose traits are in force for `path` at `now`: the most
    /// recent one carrying the path's top-level key (`uid`, `message`).
    mutating func currentTraits(_ path: PropertyPath) -> String {
        let topKey = dialect.jsonPath(PropertyPath(["traits", path.root])) { bind($0) }
        let carrying = """
            SELECT \(resolvedUser("e")) AS uid, e.ts AS ts, e.message_id AS mid, e.message AS message
            FROM events e
            WHERE e.type = 'identify' AND e.event IS NULL AND e.ts <= \(now)
              AND \(dialect.jsonType("e.message", topKey)) IS NOT NULL
            """
        let ranked = """
            SELECT uid, message, row_number() OVER (PARTITION BY uid ORDER BY ts DESC, \(dialect.byteOrdered("mid")) DESC) AS rank
            FROM \(from(carrying)) WHERE uid IS NOT NULL
            """
        return "SELECT uid, message FROM \(from(ranked)) WHERE rank = 1"
    }

    private mutating func sequence(_ steps: [SequenceStep], window: EventWindow) -> String {
        // Step k's qualifying events are those with a qualifying event of step k−1 strictly before
        // them (and, with `within_previous`, no more than that before). One window pass per step
        // finds, for each candidate, the latest earlier event of the previous step: no join, so no
        // per-row search of an unindexed intermediate result.
        var previous: String?
        // Later steps are strictly after a first-step event, so never before the window's start.
        let laterWindow: EventWindow
        switch window {
        case .allTime: laterWindow = .allTime
        case .within(let duration): laterWindow = .within(duration)
        case .betweenAgo(_, let far): laterWindow = .within(far)
        case .between(let start, _): laterWindow = .between(startMillis: start, endMillis: Int64.max)
        }
        for (index, step) in steps.enumerated() {
            let events = matchingEvents(
                kind: step.kind, name: step.name, filters: step.filters, window: index == 0 ? window : laterWindow)
            let name = "seq\(ctes.count)_\(index)"
            guard let before = previous else {
                addCTE(name: name, sql: "SELECT uid, ts FROM \(from(events)) WHERE uid IS NOT NULL")
                previous = name
                continue
            }
            var qualifies = "last_previous IS NOT NULL"
            if let within = step.withinPrevious {
                qualifies += " AND ts - last_previous <= \(bind(.integer(within.milliseconds)))"
            }
            let steps = """
                SELECT uid, ts, 0 AS current, ts AS previous_ts FROM \(before)
                UNION ALL
                SELECT uid, ts, 1, NULL FROM \(from(events)) WHERE uid IS NOT NULL
                """
            let candidates = """
                SELECT uid, ts, current,
                       max(previous_ts) OVER (PARTITION BY uid ORDER BY ts
                           RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_previous
                FROM \(from(steps))
                """
            addCTE(name: name, sql: "SELECT uid, ts FROM \(from(candidates)) WHERE current = 1 AND \(qualifies)")
            previous = name
        }
        return "SELECT uid FROM \(previous ?? "universe")"
    }

    // MARK: References

    /// The CTE holding audience `key`'s members, compiled once per statement.
    private mutating func reference(audience key: String) -> String {
        let name = "audience_\(key)"
        guard !cteNames.contains(name) else { return name }
        cteNames.insert(name)
        guard let definition = definitions[key: key] else { return name }
        let sql = "SELECT uid FROM \(from(audienceSet(definition))) WHERE uid IS NOT NULL"
        ctes.append((name, sql))
        return name
    }

    /// The CTE holding computed trait `key`'s values (`uid`, `value` as JSON text).
    private mutating func reference(computedTrait key: String) -> String {
        let name = "trait_\(key)"
        guard !cteNames.contains(name) else { return name }
        cteNames.insert(name)
        guard let definition = definitions[key: key] else { return name }
        ctes.append((name, computedValues(definition)))
        return name
    }

    private mutating func addCTE(name: String, sql: String) {
        cteNames.insert(name)
        ctes.append((name, sql))
    }

    // MARK: Computed traits

    /// `(uid, value)` rows of a computed trait, `value` as JSON text; users without a value absent.
    mutating func computedValues(_ definition: Definition) -> String {
        guard let spec = definition.compute else {
            return "SELECT NULL AS uid, NULL AS value WHERE \(dialect.alwaysFalse)"
        }
        let events = matchingEvents(kind: .track, name: spec.event, filters: spec.filters, window: spec.window)
        guard let property = spec.property, spec.op != .count else {
            return "SELECT uid, \(dialect.jsonOfNumber("count(*)")) AS value FROM \(from(events)) WHERE uid IS NOT NULL GROUP BY uid"
        }
        let path = dialect.jsonPath(property) { bind($0) }
        // The considered values: events where the property is a number, string or boolean (present,
        // not null; objects and arrays are not values), each read as JSON text `j`, number, string
        // and type `t`. `rank` orders and separates the types: false < true < numbers < strings;
        // within a type, by value (numbers numerically, strings by bytes). Equal values are equal
        // (rank, value): 10 and 10.0 are one value. Where the engine reads numbers and strings
        // with one expression, it is one column.
        let number = dialect.jsonNumber("message", path)
        let string = dialect.jsonString("message", path)
        let readings: String
        let numberColumn: String
        let stringColumn: String
        if number == string {
            (readings, numberColumn, stringColumn) = ("\(number) AS v", "v", "v")
        } else {
            (readings, numberColumn, stringColumn) = ("\(number) AS vn, \(string) AS vs", "vn", "vs")
        }
        let valueColumns = numberColumn == stringColumn ? numberColumn : "\(numberColumn), \(stringColumn)"
        let valueOrder =
            numberColumn == stringColumn
            ? "\(dialect.byteOrdered(numberColumn)) ASC"
            : "\(numberColumn) ASC, \(dialect.byteOrdered(stringColumn)) ASC"
        let rank = """
            CASE WHEN \(dialect.typeIs("t", [.false])) THEN 0 WHEN \(dialect.typeIs("t", [.true])) THEN 1 \
            WHEN \(dialect.typeIs("t", [.integer, .real])) THEN 2 ELSE 3 END
            """
        let read = """
            SELECT uid, ts, mid, \(dialect.jsonText("message", path)) AS j, \(readings),
                   \(dialect.jsonType("message", path)) AS t
            FROM \(from(events)) WHERE uid IS NOT NULL
            """
        let values = """
            SELECT uid, ts, mid, j, \(valueColumns), t, \(rank) AS rank
            FROM \(from(read)) WHERE \(dialect.typeIs("t", [.integer, .real, .text, .true, .false]))
            """
        // The numbers, straight from the readings (a number is always a considered value); where
        // the number reading is typed, its presence alone says "a number", with no type name read.
        let isNumber = dialect.readingsAreTyped ? "\(numberColumn) IS NOT NULL" : dialect.typeIs("t", [.integer, .real])
        let numeric = "SELECT uid, \(numberColumn) AS v FROM \(from(read + dialect.noFlattenFence)) WHERE \(isNumber)"
        // Distinct values per user, each with one of its JSON spellings and its number of events.
        let distinct = """
            SELECT uid, rank, \(valueColumns), min(j) AS j, count(*) AS n FROM \(from(values))
            GROUP BY uid, rank, \(valueColumns)
            """
        switch spec.op {
        case .count:
            preconditionFailure("handled above")
        case .sum, .avg, .min, .max:
            return "SELECT uid, \(dialect.jsonOfNumber("\(spec.op.rawValue)(v)")) AS value FROM \(from(numeric)) GROUP BY uid"
        case .first, .last:
            let direction = spec.op == .first ? "ASC" : "DESC"
            let ranked = """
                SELECT uid, j, row_number() OVER (PARTITION BY uid ORDER BY ts \(direction), \(dialect.byteOrdered("mid")) \(direction)) AS position
                FROM \(from(values))
                """
            return "SELECT uid, j AS value FROM \(from(ranked)) WHERE position = 1"
        case .mostFrequent:
            let minimum = bind(.integer(Int64(spec.minFrequency)))
            let ranked = """
                SELECT uid, j, n, row_number() OVER (PARTITION BY uid ORDER BY n DESC, rank ASC, \(valueOrder)) AS position
                FROM \(from(distinct))
                """
            return "SELECT uid, j AS value FROM \(from(ranked)) WHERE position = 1 AND n >= \(minimum)"
        case .uniqueCount:
            return "SELECT uid, \(dialect.jsonOfNumber("count(*)")) AS value FROM \(from(distinct)) GROUP BY uid"
        case .uniqueList:
            let limit = bind(.integer(Int64(ComputeSpec.uniqueListLimit)))
            // The smallest distinct values, at most `limit`; a window aggregate accumulates in its
            // ORDER BY order, so the array comes out sorted.
            let positioned = """
                SELECT uid, j, rank, \(valueColumns), row_number() OVER (PARTITION BY uid ORDER BY rank ASC, \(valueOrder)) AS position
                FROM \(from(distinct))
                """
            let listed = """
                SELECT uid,
                       \(dialect.jsonArrayAggregate("j")) OVER (
                           PARTITION BY uid ORDER BY rank ASC, \(valueOrder)
                           ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS value,
                       position
                FROM \(from(positioned)) WHERE position <= \(limit)
                """
            return "SELECT uid, value FROM \(from(listed)) WHERE position = 1"
        }
    }

    // MARK: Predicates

    /// Where a predicate finds the value it tests.
    enum TestedValue {
        /// At `path` of the message JSON column `document`.
        case message(String, PropertyPath)
        /// The JSON text column (a computed trait's value).
        case json(String)
        /// An integer count column.
        case count(String)
    }

    /// The readings of a tested value: its JSON type name, its number, its string (SQL expressions).
    private struct Readings {
        var type: String
        var number: String
        var string: String
    }

    /// The readings of `value`; a message path is bound here, so only when a comparison uses it.
    private mutating func readings(_ value: TestedValue) -> Readings {
        switch value {
        case .message(let document, let path):
            let bound = dialect.jsonPath(path) { bind($0) }
            return Readings(
                type: dialect.jsonType(document, bound), number: dialect.jsonNumber(document, bound),
                string: dialect.jsonString(document, bound))
        case .json(let column):
            return Readings(
                type: dialect.jsonTextType(column), number: dialect.jsonTextNumber(column),
                string: dialect.jsonTextString(column))
        case .count(let column):
            return Readings(type: "'\(JSONTypeName.integer.rawValue)'", number: column, string: column)
        }
    }

    /// A condition (true or false, never NULL) for `predicate` on `value`. Strict typing is done on
    /// the type: a value of another type, or a missing one, fails every positive operator.
    mutating func test(_ predicate: Predicate, on value: TestedValue) -> String {
        var resolved: Readings?
        var parts: [String] = []
        for comparison in predicate.comparisons {
            parts.append(self.comparison(comparison, on: value, readings: &resolved))
        }
        return "(" + parts.joined(separator: " AND ") + ")"
    }

    private mutating func comparison(
        _ comparison: Predicate.Comparison, on source: TestedValue, readings resolved: inout Readings?
    ) -> String {
        // An empty `in`/`not_in` is constant and reads nothing: its path is never bound.
        switch comparison {
        case .in(let literals) where literals.isEmpty: return dialect.alwaysFalse
        case .notIn(let literals) where literals.isEmpty: return "NOT " + dialect.alwaysFalse
        default: break
        }
        let value = resolved ?? readings(source)
        resolved = value
        switch comparison {
        case .eq(let literal): return equals(literal, value)
        case .ne(let literal): return "NOT " + equals(literal, value)
        case .gt(let literal): return order(">", literal, value)
        case .gte(let literal): return order(">=", literal, value)
        case .lt(let literal): return order("<", literal, value)
        case .lte(let literal): return order("<=", literal, value)
        case .in(let literals): return oneOf(literals, value)
        case .notIn(let literals): return "NOT " + oneOf(literals, value)
        case .contains(let text): return stringTest(value, needle: bind(.text(text)), dialect.contains)
        case .notContains(let text): return "NOT " + stringTest(value, needle: bind(.text(text)), dialect.contains)
        case .startsWith(let text): return stringTest(value, needle: bind(.text(text)), dialect.startsWith)
        case .endsWith(let text): return stringTest(value, needle: bind(.text(text)), dialect.endsWith)
        case .exists(let flag):
            // Any type but null (a missing value's type is NULL): the type read once.
            let present = dialect.definitely(dialect.typeIs(value.type, JSONTypeName.allCases.filter { $0 != .null }))
            return flag ? present : "NOT " + present
        }
    }

    private func stringTest(_ value: Readings, needle: String, _ test: (String, String) -> String) -> String {
        dialect.definitely(typed(value, [.text], test(value.string, needle)))
    }

    /// `condition`, on a reading of `value`, holding only for a value of one of `types`: the type
    /// is tested first, unless the dialect's readings are NULL on any other type already.
    private func typed(_ value: Readings, _ types: [JSONTypeName], _ condition: String) -> String {
        dialect.readingsAreTyped ? condition : "\(dialect.typeIs(value.type, types)) AND \(condition)"
    }

    private mutating func equals(_ literal: Literal, _ value: Readings) -> String {
        switch literal {
        case .string(let text):
            return dialect.definitely(typed(value, [.text], "\(value.string) = \(bind(.text(text)))"))
        case .integer, .double:
            return dialect.definitely(typed(value, [.integer, .real], "\(value.number) = \(bindNumber(literal))"))
        case .bool(let flag): return dialect.definitely(dialect.typeIs(value.type, [flag ? .true : .false]))
        case .null: return dialect.definitely(dialect.typeIs(value.type, [.null]))
        case .list: return dialect.alwaysFalse
        }
    }

    private mutating func order(_ op: String, _ literal: Literal, _ value: Readings) -> String {
        switch literal {
        case .string(let text):
            return dialect.definitely(
                typed(value, [.text], "\(dialect.byteOrdered(value.string)) \(op) \(bind(.text(text)))"))
        case .integer, .double:
            return dialect.definitely(typed(value, [.integer, .real], "\(value.number) \(op) \(bindNumber(literal))"))
        case .bool, .null, .list: return dialect.alwaysFalse
        }
    }

    /// `in`: one of the literals (at least one).
    private mutating func oneOf(_ literals: [Literal], _ value: Readings) -> String {
        var parts: [String] = []
        for literal in literals { parts.append(equals(literal, value)) }
        return "(" + parts.joined(separator: " OR ") + ")"
    }
}
