/// Questions about the stored events and identities as of a time (SPEC §3.2), compiled like the
/// definitions: the same link rule, the dialect's spelling, binds only. `status` counts the events
/// that count for no one; the tests compare these answers with an independent model.
extension QueryCompiler {
    /// A compiler for queries that refer to no definition.
    init(dialect: any SQLDialect, now: Int64) {
        self.init(definitions: DefinitionSet(definitions: [], evaluationOrder: []), dialect: dialect, now: now)
    }

    /// `user_id` of the user `anonymousId` is linked to at `now` (no row: none).
    mutating func linkedUserQuery(anonymousId: String) -> CompiledQuery {
        let id = bind(.text(anonymousId))
        return CompiledQuery(sql: "SELECT \(linkedUser(of: id)) AS user_id", binds: binds)
    }

    /// Every user id known at `now`, by their bytes.
    func usersQuery() -> CompiledQuery {
        CompiledQuery(
            sql: "SELECT user_id FROM users WHERE first_seen <= \(now) ORDER BY \(dialect.byteOrdered("user_id"))",
            binds: binds)
    }

    /// The number of stored messages without a `userId` whose anonymous id has no link at `now`.
    func unlinkedAnonymousEventCountQuery() -> CompiledQuery {
        CompiledQuery(
            sql: """
                SELECT count(*) FROM events e
                WHERE e.user_id IS NULL AND e.ts <= \(now)
                  AND NOT EXISTS (SELECT 1 FROM identity_links l WHERE l.anonymous_id = e.anonymous_id AND l.ts <= \(now))
                """, binds: binds)
    }

    /// The `traits` objects (JSON text) of the identify messages of `userId` and of the anonymous
    /// ids linked to them at `now`, in the order they merge: event time, then messageId.
    mutating func identifyTraitsQuery(userId: String) -> CompiledQuery {
        let user = bind(.text(userId))
        let traits = dialect.jsonPath(PropertyPath(["traits"])) { bind($0) }
        return CompiledQuery(
            sql: """
                SELECT \(dialect.jsonText("e.message", traits)) FROM events e
                WHERE e.type = 'identify' AND e.ts <= \(now)
                  AND \(dialect.typeIs(dialect.jsonType("e.message", traits), [.object]))
                  AND (e.user_id = \(user) OR (e.user_id IS NULL AND \(linkedUser(of: "e.anonymous_id")) = \(user)))
                ORDER BY e.ts, \(dialect.byteOrdered("e.message_id"))
                """, binds: binds)
    }

    /// Messages stored per source and day of arrival (days since the epoch, UTC) from `firstDay` on.
    static func arrivalsQuery(dialect: any SQLDialect, from firstDay: Int64) -> CompiledQuery {
        CompiledQuery(
            sql: """
                SELECT source, day, count FROM event_counts WHERE day >= \(dialect.placeholder(1))
                ORDER BY \(dialect.byteOrdered("source")), day
                """, binds: [.integer(firstDay)])
    }

    /// The number of stored messages, and of known users (whatever `now`).
    static func eventCountQuery() -> CompiledQuery { CompiledQuery(sql: "SELECT count(*) FROM events", binds: []) }
    static func userCountQuery() -> CompiledQuery { CompiledQuery(sql: "SELECT count(*) FROM users", binds: []) }

    // MARK: One user (explain)

    /// Whether `condition` holds for `userId`: the compiled set, restricted to them (a row or none).
    mutating func holdsQuery(_ condition: Condition, userId: String) -> CompiledQuery {
        let set = from(set(condition))
        let user = bind(.text(userId))
        return query("SELECT 1 FROM \(set) WHERE uid = \(user) LIMIT 1")
    }

    /// The number of the user's events matching a `performed` condition's parts.
    mutating func matchingCountQuery(
        kind: EventKind, name: String, filters: [PropertyFilter], window: EventWindow, userId: String
    ) -> CompiledQuery {
        let events = from(matchingEvents(kind: kind, name: name, filters: filters, window: window))
        let user = bind(.text(userId))
        return query("SELECT count(*) FROM \(events) WHERE uid = \(user)")
    }

    /// The user's trait at `path` in force at `now`, as JSON text (no row, or NULL: missing).
    mutating func traitValueQuery(_ path: PropertyPath, userId: String) -> CompiledQuery {
        let current = currentTraits(path)
        let full = dialect.jsonPath(PropertyPath(["traits"] + path.keys)) { bind($0) }
        let user = bind(.text(userId))
        return query("SELECT \(dialect.jsonText("t.message", full)) FROM (\(current)) t WHERE t.uid = \(user)")
    }

    /// The value of computed trait `definition` for `userId` as JSON text (no row: none).
    mutating func computedValueQuery(_ definition: Definition, userId: String) -> CompiledQuery {
        let values = from(computedValues(definition))
        let user = bind(.text(userId))
        return query("SELECT value FROM \(values) WHERE uid = \(user)")
    }
}

extension MembershipSource {
    /// The user `anonymousId` belongs to at `now`, or nil when it is not linked yet (SPEC §3.2).
    public func linkedUser(anonymousId: String, now: Int64) async throws -> String? {
        var compiler = QueryCompiler(dialect: dialect, now: now)
        return try await rows(compiler.linkedUserQuery(anonymousId: anonymousId)).first?.first?.string
    }

    /// Every user id known at `now` (the universe `not` ranges over), by their bytes.
    public func users(now: Int64) async throws -> [String] {
        try await rows(QueryCompiler(dialect: dialect, now: now).usersQuery()).compactMap { $0.first?.string }
    }

    /// Stored messages without a `userId` whose anonymous id has no link at `now`: they count for
    /// no one (SPEC §3.2).
    public func unlinkedAnonymousEventCount(now: Int64) async throws -> Int {
        try await count(QueryCompiler(dialect: dialect, now: now).unlinkedAnonymousEventCountQuery())
    }

    /// A user's traits at `now` (SPEC §3.2): the `traits` of their identify messages (their own or
    /// of an anonymous id linked to them at `now`), merged key by key in event-time order, ties by
    /// messageId; later values win and nested objects are replaced whole. Nil when there are none.
    public func traits(userId: String, now: Int64) async throws -> JSONValue? {
        var compiler = QueryCompiler(dialect: dialect, now: now)
        var merged: [JSONValue.Member] = []
        for row in try await rows(compiler.identifyTraitsQuery(userId: userId)) {
            guard let text = row.first?.string, case .object(let members) = try JSONValue.parse(text) else { continue }
            for member in members {
                // Keys are the same when their bytes are (Swift's `==` would merge canonically equivalent keys).
                if let index = merged.firstIndex(where: { $0.key.utf8.elementsEqual(member.key.utf8) }) {
                    merged[index].value = member.value
                } else {
                    merged.append(member)
                }
            }
        }
        return merged.isEmpty ? nil : .object(merged)
    }

    /// Messages stored per source (`ingest` for files) and day of arrival, from `firstDay` on
    /// (days since the epoch, UTC).
    public func arrivals(from firstDay: Int64) async throws -> [Arrivals] {
        try await rows(QueryCompiler.arrivalsQuery(dialect: dialect, from: firstDay)).compactMap { row in
            guard row.count == 3, let source = row[0].string, let day = row[1].int64, let count = row[2].int64 else {
                return nil
            }
            return Arrivals(source: source, day: day, count: Int(count))
        }
    }

    /// The number of stored messages.
    public func eventCount() async throws -> Int { try await count(QueryCompiler.eventCountQuery()) }

    /// The number of known users (whatever the time).
    public func userCount() async throws -> Int { try await count(QueryCompiler.userCountQuery()) }

    /// The single integer a query returns (0 for none).
    func count(_ query: CompiledQuery) async throws -> Int {
        Int(try await rows(query).first?.first?.int64 ?? 0)
    }
}

/// How many messages a source sent that were stored on one day of arrival.
public struct Arrivals: Sendable, Equatable {
    public var source: String
    /// Days since the epoch, UTC.
    public var day: Int64
    public var count: Int
}
