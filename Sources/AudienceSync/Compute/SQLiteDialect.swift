/// Every SQL fragment that depends on the database engine, in one place (SPEC §9): JSON access,
/// typing, string tests and the identity CTEs. The compiler composes these and never writes
/// engine-specific SQL itself, so that the same definitions can later run on PostgreSQL or a
/// warehouse by providing another dialect.
///
/// JSON values are read as two columns: the value (`json_extract`: SQL number, text, or 1/0 for
/// booleans) and its JSON type (`json_type`: `integer`, `real`, `text`, `true`, `false`, `null`,
/// `array`, `object`, or SQL NULL when the path is missing). Strict typing is done on the type.
struct SQLiteDialect {
    /// The value at `path` (a bound parameter holding a JSON path) of the JSON text `document`.
    func jsonValue(_ document: String, _ path: String) -> String { "json_extract(\(document), \(path))" }

    /// The JSON type at `path` of `document`; SQL NULL when the path is missing.
    func jsonType(_ document: String, _ path: String) -> String { "json_type(\(document), \(path))" }

    /// The value at `path` as JSON text (`"a"`, `5`, `true`, `{…}`), SQL NULL when missing.
    func jsonText(_ document: String, _ path: String) -> String { "(\(document) -> \(path))" }

    /// A JSON text `value` parsed back into its SQL value / JSON type (for computed-trait values).
    func jsonSelfValue(_ value: String) -> String { "json_extract(\(value), '$')" }
    func jsonSelfType(_ value: String) -> String { "json_type(\(value), '$')" }

    /// The SQL value `value` as JSON text (numbers stay numbers, text is quoted).
    func jsonQuote(_ value: String) -> String { "json_quote(\(value))" }

    /// An aggregate building a JSON array of JSON texts, in the order rows reach it.
    func jsonArrayAggregate(_ jsonText: String) -> String { "json_group_array(json(\(jsonText)))" }

    /// Whether `type` (a JSON type column) is a number.
    func isNumber(_ type: String) -> String { "\(type) IN ('integer', 'real')" }
    func isText(_ type: String) -> String { "\(type) = 'text'" }

    /// Case-sensitive substring and affix tests on text.
    func contains(_ value: String, _ needle: String) -> String { "instr(\(value), \(needle)) > 0" }
    func startsWith(_ value: String, _ prefix: String) -> String {
        "substr(\(value), 1, length(\(prefix))) = \(prefix)"
    }
    func endsWith(_ value: String, _ suffix: String) -> String {
        "(length(\(suffix)) = 0 OR (length(\(value)) >= length(\(suffix)) AND substr(\(value), -length(\(suffix))) = \(suffix)))"
    }

    /// The user an event of `alias` counts for at `now`: its userId, else the user its anonymousId
    /// is linked to at `now` — the earliest link with event time ≤ now, ties by messageId, then
    /// user id (SPEC §3.2). The lookup is a seek on `identity_links`' key, made only for events
    /// without a userId (`coalesce` stops at the first non-null argument).
    func resolvedUser(_ alias: String, now: String) -> String {
        """
        coalesce(\(alias).user_id, (SELECT il.user_id FROM identity_links il
            WHERE il.anonymous_id = \(alias).anonymous_id AND il.ts <= \(now)
            ORDER BY il.ts, il.message_id, il.user_id LIMIT 1))
        """
    }

    /// Every user id seen in a message with event time ≤ now.
    func universeCTE(now: String) -> String {
        "universe AS MATERIALIZED (SELECT user_id AS uid FROM users WHERE first_seen <= \(now))"
    }

    /// The events of one type and name with event time in `(after, through]`, each with the user it
    /// counts for (`uid`, NULL for unlinked anonymous events), its time, id and message JSON.
    /// `extraWhere` adds conditions on `e.message`.
    func resolvedEvents(
        type: String, name: String, after: String?, through: String, now: String, extraWhere: [String]
    ) -> String {
        var conditions = ["e.type = \(type)", "e.event = \(name)", "e.ts <= \(through)"]
        if let after { conditions.append("e.ts > \(after)") }
        conditions += extraWhere
        return """
            SELECT \(resolvedUser("e", now: now)) AS uid, e.ts AS ts, e.message_id AS mid, e.message AS message
            FROM events e
            WHERE \(conditions.joined(separator: " AND "))
            """
    }

    /// Identify messages with event time ≤ now that carry `traitPath` (present, possibly null),
    /// with their user; the most recent per user is the one whose value is in force.
    func identifiesCarrying(traitPath: String, now: String) -> String {
        """
        SELECT \(resolvedUser("e", now: now)) AS uid, e.ts AS ts, e.message_id AS mid, e.message AS message
        FROM events e
        WHERE e.type = 'identify' AND e.event IS NULL AND e.ts <= \(now)
          AND json_type(e.message, \(traitPath)) IS NOT NULL
        """
    }
}
