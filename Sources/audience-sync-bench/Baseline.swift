import AudienceSync

/// The demo definitions (`fixtures/demo/audiences`) as the SQL an engineer would write by hand
/// for each one on this schema, in SQLite's SQL and in PostgreSQL's: the yardstick for the
/// engine's generated SQL on each store.
///
/// Each query gives the same result as the engine (SPEC §3.2 and §4, checked on every run):
/// - an event counts for its `user_id`, else for the user its `anonymous_id` is linked to at now —
///   the earliest link with `ts <= ?1`, ties by message id, then user id — and for no one when
///   there is none;
/// - events after now do not exist: every window ends at `?1`;
/// - property filters are strictly typed. Equality with a string literal needs no type test (an
///   object or array reads back as JSON text starting with `{` or `[`, which no such literal
///   equals); a number comparison does, because `json_extract` gives booleans as 1 and 0.
///
/// On PostgreSQL the same queries are spelled with its operators: `$1`, a property read with `#>`
/// (`#>>` for its text) on the `jsonb` message, a number test with `jsonb_typeof` before the cast
/// (inside a `CASE`: PostgreSQL does not evaluate `AND` in order), the user through a `LATERAL`
/// subquery so that it can be filtered by name, ids ordered by their bytes (the store's id columns
/// are `COLLATE "C"`, and so is the `coalesce` of two of them).
///
/// `?1` (`$1`) is now in epoch milliseconds; every other value is written into the SQL, as one
/// would for a single audience. Durations in milliseconds: 7d = 604,800,000, 14d = 1,209,600,000,
/// 30d = 2,592,000,000, 90d = 7,776,000,000.
struct Baseline {
    var key: String
    var kind: Definition.Kind
    /// Members: one column `uid`, sorted. Values: `uid`, `value` (an SQL number), sorted by `uid`.
    var sql: String
    /// The same query in PostgreSQL's SQL.
    var postgresSQL: String

    /// The statement for the store whose dialect is `dialect`, with its one bind, `now`.
    func query(now: Int64, dialect: any SQLDialect) -> CompiledQuery {
        CompiledQuery(sql: dialect is PostgresDialect ? postgresSQL : sql, binds: [.integer(now)])
    }

    /// The baseline for the definition with trait key `key`, if there is one.
    static func forKey(_ key: String) -> Baseline? { all.first { $0.key == key } }

    /// The user an event `e` counts for at `?1`.
    private static let user = """
        coalesce(e.user_id, (SELECT l.user_id FROM identity_links l
                             WHERE l.anonymous_id = e.anonymous_id AND l.ts <= ?1
                             ORDER BY l.ts, l.message_id, l.user_id LIMIT 1))
        """

    /// On PostgreSQL: `u.uid`, the user an event `e` counts for at `$1`, joined beside `e`.
    private static let postgresUser = """
        CROSS JOIN LATERAL (SELECT coalesce(e.user_id, (SELECT l.user_id FROM identity_links l
                                    WHERE l.anonymous_id = e.anonymous_id AND l.ts <= $1
                                    ORDER BY l.ts, l.message_id, l.user_id LIMIT 1)) AS uid) u
        """

    static let all: [Baseline] = [
        Baseline(
            key: "engaged_non_buyers", kind: .audience,
            sql: """
                SELECT \(user) AS uid FROM events e
                WHERE e.event = 'Pricing' AND e.type = 'page' AND e.ts > ?1 - 1209600000 AND e.ts <= ?1
                  AND uid IS NOT NULL
                EXCEPT
                SELECT \(user) FROM events e
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > ?1 - 2592000000 AND e.ts <= ?1
                ORDER BY 1
                """,
            postgresSQL: """
                SELECT u.uid FROM events e \(postgresUser)
                WHERE e.event = 'Pricing' AND e.type = 'page' AND e.ts > $1 - 1209600000 AND e.ts <= $1
                  AND u.uid IS NOT NULL
                EXCEPT
                SELECT u.uid FROM events e \(postgresUser)
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > $1 - 2592000000 AND e.ts <= $1
                ORDER BY 1
                """),
        Baseline(
            key: "nps_detractors", kind: .audience,
            sql: """
                SELECT DISTINCT \(user) AS uid FROM events e
                WHERE e.event = 'SDK - Submitted - Survey Response' AND e.type = 'track'
                  AND e.ts > ?1 - 7776000000 AND e.ts <= ?1
                  AND e.message ->> '$.properties.question' = 'How likely are you to recommend us?'
                  AND json_type(e.message, '$.properties.response') IN ('integer', 'real')
                  AND e.message ->> '$.properties.response' <= 6
                  AND uid IS NOT NULL
                ORDER BY uid
                """,
            postgresSQL: """
                SELECT DISTINCT u.uid FROM events e \(postgresUser)
                WHERE e.event = 'SDK - Submitted - Survey Response' AND e.type = 'track'
                  AND e.ts > $1 - 7776000000 AND e.ts <= $1
                  AND e.message #>> '{properties,question}' = 'How likely are you to recommend us?'
                  AND CASE WHEN jsonb_typeof(e.message #> '{properties,response}') = 'number'
                           THEN (e.message #> '{properties,response}')::numeric <= 6 END
                  AND u.uid IS NOT NULL
                ORDER BY 1
                """),
        Baseline(
            key: "order_completed_last_30days", kind: .audience,
            sql: """
                SELECT DISTINCT \(user) AS uid FROM events e
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > ?1 - 2592000000 AND e.ts <= ?1
                  AND uid IS NOT NULL
                ORDER BY uid
                """,
            postgresSQL: """
                SELECT DISTINCT u.uid FROM events e \(postgresUser)
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > $1 - 2592000000 AND e.ts <= $1
                  AND u.uid IS NOT NULL
                ORDER BY 1
                """),
        // An order strictly after a sign-up of the last 30 days is itself in the last 30 days,
        // so only those orders are read. Sign-ups and orders are sorted together by user and
        // time, and each order sees the latest strictly earlier sign-up: one sort instead of a
        // join on a computed user id (which no index serves).
        Baseline(
            key: "signup_to_order_7d", kind: .audience,
            sql: """
                WITH steps AS (
                    SELECT \(user) AS uid, e.ts AS ts, 0 AS step FROM events e
                    WHERE e.event = 'Signed Up' AND e.type = 'track' AND e.ts > ?1 - 2592000000 AND e.ts <= ?1
                    UNION ALL
                    SELECT \(user), e.ts, 1 FROM events e
                    WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > ?1 - 2592000000 AND e.ts <= ?1
                )
                SELECT DISTINCT uid FROM (
                    SELECT uid, ts, step,
                           max(CASE step WHEN 0 THEN ts END) OVER (
                               PARTITION BY uid ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                           ) AS signed_up
                    FROM steps WHERE uid IS NOT NULL
                )
                WHERE step = 1 AND ts - signed_up <= 604800000
                ORDER BY uid
                """,
            postgresSQL: """
                WITH steps AS (
                    SELECT u.uid, e.ts, 0 AS step FROM events e \(postgresUser)
                    WHERE e.event = 'Signed Up' AND e.type = 'track' AND e.ts > $1 - 2592000000 AND e.ts <= $1
                    UNION ALL
                    SELECT u.uid, e.ts, 1 FROM events e \(postgresUser)
                    WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > $1 - 2592000000 AND e.ts <= $1
                )
                SELECT DISTINCT uid FROM (
                    SELECT uid, ts, step,
                           max(CASE step WHEN 0 THEN ts END) OVER (
                               PARTITION BY uid ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                           ) AS signed_up
                    FROM steps WHERE uid IS NOT NULL
                ) ordered
                WHERE step = 1 AND ts - signed_up <= 604800000
                ORDER BY 1
                """),
        Baseline(
            key: "total_spent_90_days", kind: .computedTrait,
            sql: """
                SELECT \(user) AS uid, sum(e.message ->> '$.properties.total') AS value FROM events e
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > ?1 - 7776000000 AND e.ts <= ?1
                  AND e.message ->> '$.properties.currency' = 'USD'
                  AND json_type(e.message, '$.properties.total') IN ('integer', 'real')
                  AND uid IS NOT NULL
                GROUP BY uid
                ORDER BY uid
                """,
            // The WHERE's type test runs before the select list, so the cast never sees a
            // non-number; the exact `numeric` sum is handed over as a double, as SQLite's is.
            postgresSQL: """
                SELECT u.uid, sum((e.message #> '{properties,total}')::numeric)::float8 AS value
                FROM events e \(postgresUser)
                WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > $1 - 7776000000 AND e.ts <= $1
                  AND e.message #>> '{properties,currency}' = 'USD'
                  AND jsonb_typeof(e.message #> '{properties,total}') = 'number'
                  AND u.uid IS NOT NULL
                GROUP BY u.uid
                ORDER BY 1
                """),
    ]
}
