/// Reads of the sync tables (snapshots, outbox, runs, pairs) shared by `sync`, `diff` and `status`.
struct SyncState {
    let database: Database

    /// When the last completed sync of the pair started; nil when it never completed one.
    func lastSyncedAt(key: String, destination: String) throws -> Int64? {
        try database.prepare("SELECT last_synced_at FROM pairs WHERE key = ?1 AND destination = ?2")
            .scalar([.text(key), .text(destination)])?.int64
    }

    /// Whether the pair has never been synced: no completed sync and no snapshot row.
    func isFirstSync(key: String, destination: String) throws -> Bool {
        guard try lastSyncedAt(key: key, destination: destination) == nil else { return false }
        return try database.prepare("SELECT 1 FROM snapshots WHERE key = ?1 AND destination = ?2 LIMIT 1")
            .scalar([.text(key), .text(destination)]) == nil
    }

    /// The id the next run will get (runs use AUTOINCREMENT: one past the largest ever given).
    func nextRunId() throws -> Int64 {
        (try database.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").scalar()?.int64 ?? 0) + 1
    }

    /// SQL: the delivery mark of the pair whose key and destination are the SQL expressions
    /// `key` and `destination` (bound parameters, or an outer query's columns): every outbox row
    /// of the pair with an id up to it is resolved (schema 4, `outbox_marks`); 0 without a mark.
    /// The arguments are the program's own SQL, never user input.
    static func mark(key: String, destination: String) -> String {
        """
        coalesce((SELECT marks.through_id FROM outbox_marks marks \
        WHERE marks.key = \(key) AND marks.destination = \(destination)), 0)
        """
    }

    /// SQL: the delivery mark of the pair bound as `?1` (key) and `?2` (destination).
    static let markOfBoundPair = mark(key: "?1", destination: "?2")

    /// SQL: the pair's (`?1`, `?2`) outbox rows still owed to the destination, through the partial
    /// index `outbox_pending` and above the pair's mark.
    static let pendingOfBoundPair =
        "key = ?1 AND destination = ?2 AND state = 'pending' AND id > \(markOfBoundPair)"

    /// The number of the pair's outbox messages still owed to the destination.
    func pendingCount(key: String, destination: String) throws -> Int {
        try count("SELECT count(*) FROM outbox WHERE \(Self.pendingOfBoundPair)", [.text(key), .text(destination)])
    }

    /// The pairs with pending outbox work, oldest work first. The pairs that have rows in the
    /// partial index are found by seeking from one to the next (a handful of pairs, however many
    /// rows), then each is asked for its oldest row above its mark.
    func pendingPairs() throws -> [(key: String, destination: String)] {
        let first = try database.prepare(
            "SELECT key, destination FROM outbox WHERE state = 'pending' ORDER BY key, destination LIMIT 1")
        let next = try database.prepare(
            """
            SELECT key, destination FROM outbox WHERE state = 'pending' AND (key, destination) > (?1, ?2)
            ORDER BY key, destination LIMIT 1
            """)
        let oldest = try database.prepare("SELECT min(id) FROM outbox WHERE \(Self.pendingOfBoundPair)")
        var found: [(key: String, destination: String, oldest: Int64)] = []
        var row = try first.rows().first
        while let current = row, let key = current[0].string, let destination = current[1].string {
            let pair: [SQLiteValue] = [.text(key), .text(destination)]
            if let id = try oldest.scalar(pair)?.int64 { found.append((key, destination, id)) }
            row = try next.rows(pair).first
        }
        return found.sorted { $0.oldest < $1.oldest }.map { ($0.key, $0.destination) }
    }

    /// Pending outbox messages of a pair, in outbox order.
    func pendingMessages(key: String, destination: String, after id: Int64, limit: Int) throws -> [OutboundMessage] {
        try database.prepare(
            """
            SELECT o.id, o.user_id, o.message_id, m.message FROM outbox o JOIN outbox_messages m ON m.id = o.id
            WHERE o.key = ?1 AND o.destination = ?2 AND o.state = 'pending' AND o.id > max(?3, \(Self.markOfBoundPair))
            ORDER BY o.id LIMIT ?4
            """
        ).rows([.text(key), .text(destination), .integer(id), .integer(Int64(limit))]).compactMap { row in
            guard let id = row[0].int64, let userId = row[1].string, let messageId = row[2].string,
                let body = row[3].string
            else { return nil }
            return OutboundMessage(id: id, userId: userId, messageId: messageId, body: body)
        }
    }

    /// Snapshot sizes of every pair that has one.
    func snapshotSizes() throws -> [(key: String, destination: String, count: Int)] {
        try database.prepare("SELECT key, destination, count(*) FROM snapshots GROUP BY key, destination ORDER BY 1, 2")
            .rows().compactMap { row in
                guard let key = row[0].string, let destination = row[1].string else { return nil }
                return (key, destination, Int(row[2].int64 ?? 0))
            }
    }

    /// Snapshots that belong to no configured pair (SPEC §6: a definition that disappeared or
    /// changed its key). `known` holds the pairs of every definition file, enabled or not.
    func orphans(known: Set<PairName>) throws -> [(key: String, destination: String, count: Int)] {
        try snapshotSizes().filter { !known.contains(PairName(key: $0.key, destination: $0.destination)) }
    }

    func count(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        Int(try database.prepare(sql).scalar(values)?.int64 ?? 0)
    }
}

/// A pair by name, for sets.
struct PairName: Hashable {
    var key: String
    var destination: String
}

extension DefinitionSet {
    /// The (key, destination) pairs of every definition file, enabled or disabled.
    func knownPairs() -> Set<PairName> {
        var result = Set<PairName>()
        for definition in definitions + disabled {
            for destination in definition.destinations { result.insert(PairName(key: definition.key, destination: destination)) }
        }
        return result
    }
}
