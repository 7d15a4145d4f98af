/// Compiles definitions into single SQL statements (SPEC §4): an audience into the sorted set of
/// its members, a computed trait into `(uid, value)` rows with the value as JSON text.
///
/// Each condition becomes a query returning one column `uid`; `all`, `any` and `not` combine them
/// with INTERSECT, UNION and EXCEPT from the universe. Definitions referred to by `in_audience` and
/// `computed` become CTEs of the same statement. Every user-supplied value — event names, JSON
/// paths, literals — is a bound parameter; `now` is parameter 1.
struct QueryCompiler {
    let definitions: DefinitionSet
    let dialect = SQLiteDialect()
    private(set) var parameters: [SQLiteValue]
    /// CTEs in dependency order, by name.
    private var ctes: [(name: String, sql: String)] = []
    private var cteNames: Set<String> = []

    init(definitions: DefinitionSet, now: Int64) {
        self.definitions = definitions
        parameters = [.integer(now)]
    }

    /// `?1`: the evaluation time.
    let now = "?1"

    /// A placeholder for `value`, appended to the parameters.
    mutating func bind(_ value: SQLiteValue) -> String {
        parameters.append(value)
        return "?\(parameters.count)"
    }

    mutating func bindLiteral(_ literal: Literal) -> String {
        switch literal {
        case .string(let text): return bind(.text(text))
        case .integer(let value): return bind(.integer(value))
        case .double(let value): return bind(.real(value))
        case .bool(let value): return bind(.integer(value ? 1 : 0))
        case .null, .list: return "NULL"
        }
    }

    /// The full statement for `definition`: members (`uid`), or values (`uid`, `value`).
    mutating func statement(for definition: Definition) -> String {
        let body: String
        switch definition.kind {
        case .audience:
            // `LIMIT -1` (no limit) keeps SQLite from flattening the set into this query. Flattened,
            // GROUP BY and ORDER BY would both be on the set's `uid` expression, a `coalesce` with a
            // subquery, which SQLite never takes for equal to itself: it sorted the members twice
            // (and evaluated the expression for each of WHERE, GROUP BY and the result).
            body =
                "SELECT uid FROM (\(audienceSet(definition)) LIMIT -1) WHERE uid IS NOT NULL GROUP BY uid ORDER BY uid"
        case .computedTrait:
            body = "SELECT uid, value FROM (\(computedValues(definition))) ORDER BY uid"
        }
        return withCTEs(body)
    }

    /// `body` preceded by the identity CTEs and every CTE the compilation asked for.
    func withCTEs(_ body: String) -> String {
        var all = [dialect.universeCTE(now: now)]
        all += ctes.map { "\($0.name) AS MATERIALIZED (\($0.sql))" }
        return "WITH " + all.joined(separator: ",\n") + "\n" + body
    }

    // MARK: Audiences

    /// The members of an audience definition, as a query of `uid`.
    mutating func audienceSet(_ definition: Definition) -> String {
        guard let condition = definition.condition else { return "SELECT NULL AS uid WHERE 0" }
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
                return conditions.map { "SELECT uid FROM (\(set($0)))" }.joined(separator: " INTERSECT ")
            }
            return positive.map { "SELECT uid FROM (\($0))" }.joined(separator: " INTERSECT ")
                + negated.map { " EXCEPT SELECT uid FROM (\($0))" }.joined()
        case .any(let conditions):
            return conditions.map { "SELECT uid FROM (\(set($0)))" }.joined(separator: " UNION ")
        case .not(let inner):
            return "SELECT uid FROM universe EXCEPT SELECT uid FROM (\(set(inner)))"
        case .performed(let event):
            return performed(event)
        case .trait(let path, let predicate):
            return trait(path, predicate)
        case .computed(let key, let predicate):
            let name = reference(computedTrait: key)
            let test = self.test(
                predicate, value: dialect.jsonSelfValue("c.value"), type: dialect.jsonSelfType("c.value"))
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
            return "SELECT uid FROM (\(events)) WHERE uid IS NOT NULL"
        }
        let count = test(event.count, value: "m.n", type: "'integer'")
        if Self.count(event.count, holdsFor: 0) {
            // Users with no matching event pass: everyone but those whose count fails.
            return """
                SELECT uid FROM universe EXCEPT
                SELECT m.uid FROM (SELECT uid, count(*) AS n FROM (\(events)) WHERE uid IS NOT NULL GROUP BY uid) m
                WHERE NOT \(count)
                """
        }
        return """
            SELECT m.uid FROM (SELECT uid, count(*) AS n FROM (\(events)) WHERE uid IS NOT NULL GROUP BY uid) m
            WHERE \(count)
            """
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

    /// Events of `kind` named `name` in `window` whose message passes every filter:
    /// a query of (`uid`, `ts`, `mid`, `message`).
    mutating func matchingEvents(kind: EventKind, name: String, filters: [PropertyFilter], window: EventWindow)
        -> String
    {
        let type = bind(.text(kind.rawValue))
        let eventName = bind(.text(name))
        let (after, through) = windowBounds(window)
        var conditions: [String] = []
        for filter in filters {
            let path = bind(.text(filter.path.sqliteJSONPath))
            conditions.append(
                test(
                    filter.predicate, value: dialect.jsonValue("e.message", path),
                    type: dialect.jsonType("e.message", path)))
        }
        return dialect.resolvedEvents(
            type: type, name: eventName, after: after, through: through, now: now, extraWhere: conditions)
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
            return (bind(.integer(start - 1)), "min(\(bind(.integer(end - 1))), \(now))")
        }
    }

    private mutating func trait(_ path: PropertyPath, _ predicate: Predicate) -> String {
        // Traits merge key by key, so the top-level key decides which identify is in force; a
        // nested path is then read inside that identify's value (nested objects replaced whole).
        let current = currentTraits(path)
        let fullPath = bind(.text(PropertyPath(["traits"] + path.keys).sqliteJSONPath))
        let test = self.test(
            predicate, value: dialect.jsonValue("t.message", fullPath), type: dialect.jsonType("t.message", fullPath))
        if Self.holdsForMissing(predicate) {
            // Users without the trait pass: everyone but those whose value fails.
            return "SELECT uid FROM universe EXCEPT SELECT t.uid FROM (\(current)) t WHERE NOT \(test)"
        }
        return "SELECT t.uid FROM (\(current)) t WHERE \(test)"
    }

    /// For each user, the identify message whose traits are in force for `path` at `now`: the most
    /// recent one carrying the path's top-level key (`uid`, `message`).
    mutating func currentTraits(_ path: PropertyPath) -> String {
        let topKey = bind(.text(PropertyPath(["traits", path.root]).sqliteJSONPath))
        return """
            SELECT uid, message FROM (
                SELECT uid, message, row_number() OVER (PARTITION BY uid ORDER BY ts DESC, mid DESC) AS rank
                FROM (\(dialect.identifiesCarrying(traitPath: topKey, now: now))) WHERE uid IS NOT NULL
            ) WHERE rank = 1
            """
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
                addCTE(name: name, sql: "SELECT uid, ts FROM (\(events)) WHERE uid IS NOT NULL")
                previous = name
                continue
            }
            var qualifies = "last_previous IS NOT NULL"
            if let within = step.withinPrevious {
                qualifies += " AND ts - last_previous <= \(bind(.integer(within.milliseconds)))"
            }
            addCTE(
                name: name,
                sql: """
                    SELECT uid, ts FROM (
                        SELECT uid, ts, current,
                               max(previous_ts) OVER (PARTITION BY uid ORDER BY ts
                                   RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_previous
                        FROM (
                            SELECT uid, ts, 0 AS current, ts AS previous_ts FROM \(before)
                            UNION ALL
                            SELECT uid, ts, 1, NULL FROM (\(events)) WHERE uid IS NOT NULL
                        )
                    ) WHERE current = 1 AND \(qualifies)
                    """)
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
        let sql = "SELECT uid FROM (\(audienceSet(definition))) WHERE uid IS NOT NULL"
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
        guard let spec = definition.compute else { return "SELECT NULL AS uid, NULL AS value WHERE 0" }
        let events = matchingEvents(kind: .track, name: spec.event, filters: spec.filters, window: spec.window)
        guard let property = spec.property, spec.op != .count else {
            return "SELECT uid, \(dialect.jsonQuote("count(*)")) AS value FROM (\(events)) WHERE uid IS NOT NULL GROUP BY uid"
        }
        let path = bind(.text(property.sqliteJSONPath))
        // The considered values: events where the property is a number, string or boolean (present,
        // not null; objects and arrays are not values). `rank` orders and separates the types:
        // false < true < numbers < strings; within a type, by value (numbers numerically, strings
        // by bytes). Equal values are equal (rank, v): 10 and 10.0 are one value.
        let values = """
            SELECT uid, ts, mid, j, v, t,
                   CASE t WHEN 'false' THEN 0 WHEN 'true' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 ELSE 3 END AS rank
            FROM (
                SELECT uid, ts, mid, \(dialect.jsonText("message", path)) AS j, \(dialect.jsonValue("message", path)) AS v,
                       \(dialect.jsonType("message", path)) AS t
                FROM (\(events)) WHERE uid IS NOT NULL
            ) WHERE t IN ('integer', 'real', 'text', 'true', 'false')
            """
        let numeric = "SELECT uid, v FROM (\(values)) WHERE \(dialect.isNumber("t"))"
        // Distinct values per user, each with one of its JSON spellings and its number of events.
        let distinct = "SELECT uid, rank, v, min(j) AS j, count(*) AS n FROM (\(values)) GROUP BY uid, rank, v"
        switch spec.op {
        case .count:
            fatalError("handled above")
        case .sum:
            return "SELECT uid, \(dialect.jsonQuote("sum(v)")) AS value FROM (\(numeric)) GROUP BY uid"
        case .avg:
            return "SELECT uid, \(dialect.jsonQuote("avg(v)")) AS value FROM (\(numeric)) GROUP BY uid"
        case .min:
            return "SELECT uid, \(dialect.jsonQuote("min(v)")) AS value FROM (\(numeric)) GROUP BY uid"
        case .max:
            return "SELECT uid, \(dialect.jsonQuote("max(v)")) AS value FROM (\(numeric)) GROUP BY uid"
        case .first, .last:
            let order = spec.op == .first ? "ts ASC, mid ASC" : "ts DESC, mid DESC"
            return """
                SELECT uid, j AS value FROM (
                    SELECT uid, j, row_number() OVER (PARTITION BY uid ORDER BY \(order)) AS position FROM (\(values))
                ) WHERE position = 1
                """
        case .mostFrequent:
            let minimum = bind(.integer(Int64(spec.minFrequency)))
            return """
                SELECT uid, j AS value FROM (
                    SELECT uid, j, n, row_number() OVER (PARTITION BY uid ORDER BY n DESC, rank ASC, v ASC) AS position
                    FROM (\(distinct))
                ) WHERE position = 1 AND n >= \(minimum)
                """
        case .uniqueCount:
            return "SELECT uid, \(dialect.jsonQuote("count(*)")) AS value FROM (\(distinct)) GROUP BY uid"
        case .uniqueList:
            let limit = bind(.integer(Int64(ComputeSpec.uniqueListLimit)))
            // The smallest distinct values, at most `limit`; a window aggregate accumulates in its
            // ORDER BY order, so the array comes out sorted.
            return """
                SELECT uid, value FROM (
                    SELECT uid,
                           \(dialect.jsonArrayAggregate("j")) OVER (
                               PARTITION BY uid ORDER BY rank ASC, v ASC
                               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS value,
                           position
                    FROM (
                        SELECT uid, j, rank, v, row_number() OVER (PARTITION BY uid ORDER BY rank ASC, v ASC) AS position
                        FROM (\(distinct))
                    ) WHERE position <= \(limit)
                ) WHERE position = 1
                """
        }
    }

    // MARK: Predicates

    /// A boolean SQL expression (never NULL) for `predicate` on a value whose SQL value is `value`
    /// and JSON type is `type` (SQL NULL when missing). Strict typing is done on the type.
    mutating func test(_ predicate: Predicate, value: String, type: String) -> String {
        let parts = predicate.comparisons.map { comparison($0, value: value, type: type) }
        return "(" + parts.joined(separator: " AND ") + ")"
    }

    private mutating func comparison(_ comparison: Predicate.Comparison, value: String, type: String) -> String {
        func positive(_ sql: String) -> String { "(CASE WHEN \(sql) THEN 1 ELSE 0 END)" }
        switch comparison {
        case .eq(let literal): return equals(literal, value: value, type: type)
        case .ne(let literal): return "NOT " + equals(literal, value: value, type: type)
        case .gt(let literal): return order(">", literal, value: value, type: type)
        case .gte(let literal): return order(">=", literal, value: value, type: type)
        case .lt(let literal): return order("<", literal, value: value, type: type)
        case .lte(let literal): return order("<=", literal, value: value, type: type)
        case .in(let literals): return oneOf(literals, value: value, type: type)
        case .notIn(let literals): return "NOT " + oneOf(literals, value: value, type: type)
        case .contains(let text):
            return positive("\(dialect.isText(type)) AND \(dialect.contains(value, bind(.text(text))))")
        case .notContains(let text):
            return "NOT " + positive("\(dialect.isText(type)) AND \(dialect.contains(value, bind(.text(text))))")
        case .startsWith(let text):
            return positive("\(dialect.isText(type)) AND \(dialect.startsWith(value, bind(.text(text))))")
        case .endsWith(let text):
            return positive("\(dialect.isText(type)) AND \(dialect.endsWith(value, bind(.text(text))))")
        case .exists(let flag):
            let present = positive("\(type) IS NOT NULL AND \(type) <> 'null'")
            return flag ? present : "NOT " + present
        }
    }

    private mutating func equals(_ literal: Literal, value: String, type: String) -> String {
        func positive(_ sql: String) -> String { "(CASE WHEN \(sql) THEN 1 ELSE 0 END)" }
        switch literal {
        case .string(let text): return positive("\(dialect.isText(type)) AND \(value) = \(bind(.text(text)))")
        case .integer, .double: return positive("\(dialect.isNumber(type)) AND \(value) = \(bindLiteral(literal))")
        case .bool(let flag): return positive("\(type) = '\(flag ? "true" : "false")'")
        case .null: return positive("\(type) = 'null'")
        case .list: return "0"
        }
    }

    private mutating func order(_ op: String, _ literal: Literal, value: String, type: String) -> String {
        func positive(_ sql: String) -> String { "(CASE WHEN \(sql) THEN 1 ELSE 0 END)" }
        switch literal {
        case .string(let text): return positive("\(dialect.isText(type)) AND \(value) \(op) \(bind(.text(text)))")
        case .integer, .double: return positive("\(dialect.isNumber(type)) AND \(value) \(op) \(bindLiteral(literal))")
        case .bool, .null, .list: return "0"
        }
    }

    private mutating func oneOf(_ literals: [Literal], value: String, type: String) -> String {
        guard !literals.isEmpty else { return "0" }
        return "(" + literals.map { equals($0, value: value, type: type) }.joined(separator: " OR ") + ")"
    }
}
