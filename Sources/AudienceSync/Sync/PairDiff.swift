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

/// Diffs a pair in SQL: the current state goes into `temp.sync_current`, the snapshot (with pending
/// outbox work applied) into `temp.sync_base`, and the changes are a join of the two.
///
/// Temporary tables live in SQLite's temp database, never in the store's file, so this works, and
/// changes nothing, on a read-only connection.
final class PairDiffer {
    let database: Database
    let engine: MembershipEngine

    init(engine: MembershipEngine) throws {
        self.engine = engine
        self.database = engine.store.database
        try database.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS sync_current (user_id TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS sync_base (
                user_id TEXT PRIMARY KEY, value TEXT NOT NULL, removes INTEGER NOT NULL
            ) WITHOUT ROWID;
            """)
    }

    /// Fills the temporary tables for `pair` at `now` and returns the counts.
    func load(_ pair: SyncPair, now: Int64) throws -> PairCounts {
        try database.execute("DELETE FROM temp.sync_current; DELETE FROM temp.sync_base;")
        let (sql, parameters) = try engine.statement(key: pair.key, now: now)
        let insert: String
        switch pair.definition.kind {
        case .audience:
            insert = "INSERT OR REPLACE INTO temp.sync_current (user_id, value) SELECT uid, 'true' FROM (\(sql))"
        case .computedTrait:
            insert =
                "INSERT OR REPLACE INTO temp.sync_current (user_id, value) SELECT uid, value FROM (\(sql)) WHERE value IS NOT NULL"
        }
        let statement = try database.prepare(insert)
        try statement.execute(Array(parameters.prefix(statement.parameterCount)))
        let pairValues: [SQLiteValue] = [.text(pair.key), .text(pair.destination.name)]
        try database.prepare(
            "INSERT INTO temp.sync_base (user_id, value, removes) SELECT user_id, value, 0 FROM snapshots WHERE key = ?1 AND destination = ?2"
        ).execute(pairValues)
        try database.prepare(
            """
            INSERT INTO temp.sync_base (user_id, value, removes)
            SELECT user_id, value, removes FROM outbox WHERE key = ?1 AND destination = ?2 AND state = 'pending' ORDER BY id
            ON CONFLICT (user_id) DO UPDATE SET value = excluded.value, removes = excluded.removes
            """
        ).execute(pairValues)
        try database.execute("DELETE FROM temp.sync_base WHERE removes = 1")

        var counts = PairCounts()
        counts.members = try count("SELECT count(*) FROM temp.sync_current")
        counts.synced = try count("SELECT count(*) FROM snapshots WHERE key = ?1 AND destination = ?2", pairValues)
        counts.pending = try count(
            "SELECT count(*) FROM outbox WHERE key = ?1 AND destination = ?2 AND state = 'pending'", pairValues)
        counts.entered = try count(
            "SELECT count(*) FROM temp.sync_current c WHERE NOT EXISTS (SELECT 1 FROM temp.sync_base b WHERE b.user_id = c.user_id)"
        )
        counts.exited = try count(
            "SELECT count(*) FROM temp.sync_base b WHERE NOT EXISTS (SELECT 1 FROM temp.sync_current c WHERE c.user_id = b.user_id)"
        )
        counts.changed = try count(
            "SELECT count(*) FROM temp.sync_current c JOIN temp.sync_base b USING (user_id) WHERE b.value <> c.value")
        counts.unchanged = try count(
            "SELECT count(*) FROM temp.sync_current c JOIN temp.sync_base b USING (user_id) WHERE b.value = c.value")
        return counts
    }

    /// Calls `body` for each change of the pair last loaded, by user id.
    func forEachChange(_ pair: SyncPair, _ body: (PairChange) throws -> Void) throws {
        let gone = pair.definition.kind == .audience ? "false" : "null"
        let statement = try database.prepare(
            """
            SELECT c.user_id, c.value, CASE WHEN b.user_id IS NULL THEN 'entered' ELSE 'changed' END, 0
            FROM temp.sync_current c LEFT JOIN temp.sync_base b USING (user_id)
            WHERE b.user_id IS NULL OR b.value <> c.value
            UNION ALL
            SELECT b.user_id, '\(gone)', 'exited', 1 FROM temp.sync_base b
            WHERE NOT EXISTS (SELECT 1 FROM temp.sync_current c WHERE c.user_id = b.user_id)
            ORDER BY 1
            """)
        try statement.forEachRow { row in
            guard let userId = row.text(0), let value = row.text(1), let kind = row.text(2).flatMap(PairChange.Kind.init)
            else { return }
            try body(PairChange(userId: userId, kind: kind, value: value, removes: row.int64(3) == 1))
        }
    }

    /// Up to `limit` user ids per kind of change, by user id.
    func sample(_ pair: SyncPair, limit: Int) throws -> [PairChange.Kind: [String]] {
        var result: [PairChange.Kind: [String]] = [.entered: [], .exited: [], .changed: []]
        try forEachChange(pair) { change in
            if result[change.kind]!.count < limit { result[change.kind]!.append(change.userId) }
        }
        return result
    }

    private func count(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        Int(try database.prepare(sql).scalar(values)?.int64 ?? 0)
    }
}
