/// The sync state's statements on SQLite's tables (`SQLiteSchema` migrations 2–4): snapshots,
/// runs, pairs, the outbox with its message texts and the per-pair delivery marks.
///
/// "Pending" has one definition, `pendingOfBoundPair`: an outbox row in state `pending` above its
/// pair's delivery mark. A batch the destination acknowledged whole moves the mark over its rows
/// instead of rewriting each of them; failures are written on their rows.
struct SQLiteSyncState {
    let database: Database

    /// SQL: the delivery mark of the pair whose key and destination are the SQL expressions `key`
    /// and `destination` (bound parameters, or an outer query's columns): every outbox row of the
    /// pair with an id up to it is resolved; 0 without a mark. The arguments are the program's own
    /// SQL, never user input.
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

    private func bound(_ pair: PairName) -> [SQLiteValue] { [.text(pair.key), .text(pair.destination)] }

    private func count(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        Int(try database.cached(sql).scalar(values)?.int64 ?? 0)
    }

    // MARK: Pairs

    func pairRecord(_ pair: PairName) throws -> PairRecord {
        let lastSyncedAt = try database.cached("SELECT last_synced_at FROM pairs WHERE key = ?1 AND destination = ?2")
            .scalar(bound(pair))?.int64
        guard lastSyncedAt == nil else { return PairRecord(lastSyncedAt: lastSyncedAt, isFirstSync: false) }
        let snapshotRow = try database.cached("SELECT 1 FROM snapshots WHERE key = ?1 AND destination = ?2 LIMIT 1")
            .scalar(bound(pair))
        return PairRecord(lastSyncedAt: nil, isFirstSync: snapshotRow == nil)
    }

    /// One past the largest run id ever given (runs use AUTOINCREMENT).
    func nextRunId() throws -> Int64 {
        (try database.cached("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").scalar()?.int64 ?? 0) + 1
    }

    // MARK: Writing a run

    /// Writes the run and its outbox rows with two set-based statements, the messageIds and texts
    /// computed by SQL functions of this run: no statement per change, no row through Swift but
    /// the values the functions need.
    func writeRun(_ run: OutboxRun) throws -> WrittenRun? {
        let pair = bound(run.pair)
        let source: String
        var values: [SQLiteValue] = []
        switch run.changes {
        case .stagedDiff:
            source = "SELECT user_id, value, removes FROM temp.sync_changes ORDER BY seq"
        case .removals(let value):
            source = """
                SELECT user_id, ?5 AS value, 1 AS removes FROM snapshots WHERE key = ?2 AND destination = ?3
                ORDER BY user_id
                """
            values = [.text(value)]
        }
        return try database.inTransaction(.immediate) { () throws -> WrittenRun? in
            if case .removals = run.changes,
                try database.cached("SELECT 1 FROM snapshots WHERE key = ?1 AND destination = ?2 LIMIT 1")
                    .scalar(pair) == nil
            {
                return nil
            }
            try database.cached("INSERT INTO runs (started_at, key, destination, first_sync) VALUES (?1, ?2, ?3, ?4)")
                .execute([.integer(run.startedAt)] + pair + [.integer(run.firstSync ? 1 : 0)])
            let runId = database.lastInsertRowID
            let maker = run.messages
            let messageIDs = maker.messageIDs(runId: runId)
            try database.defineFunction("audience_sync_message_id", arguments: 2) { call in
                guard let userId = call.text(0), let value = call.text(1) else {
                    return call.fail("audience_sync_message_id: a change without user id or value")
                }
                call.result(text: messageIDs.id(userId: userId, value: value))
            }
            var body: [UInt8] = []
            var invalid: [(id: Int64, message: InvalidMessage)] = []
            try database.defineFunction("audience_sync_message", arguments: 4) { call in
                guard let userId = call.text(1), let value = call.text(2), let messageId = call.text(3) else {
                    return call.fail("audience_sync_message: an outbox row without user id, value or messageId")
                }
                do {
                    if let reason = try maker.write(userId: userId, value: value, messageId: messageId, into: &body) {
                        invalid.append((call.int64(0), InvalidMessage(userId: userId, reason: reason)))
                    }
                } catch {
                    return call.fail("audience_sync_message: the value of \(userId) is not JSON: \(error)")
                }
                body.withUnsafeBytes { call.result(text: $0) }
            }
            try database.prepare(
                """
                INSERT INTO outbox (
                    run_id, key, destination, user_id, value, removes, message_id, state, reason, created_at, updated_at
                )
                SELECT ?1, ?2, ?3, user_id, value, removes, audience_sync_message_id(user_id, value), 'pending', NULL, ?4, ?4
                FROM (\(source))
                """
            ).execute([.integer(runId)] + pair + [.integer(run.startedAt)] + values)
            try database.prepare(
                """
                INSERT INTO outbox_messages (id, message)
                SELECT id, audience_sync_message(id, user_id, value, message_id) FROM outbox WHERE run_id = ?1 ORDER BY id
                """
            ).execute([.integer(runId)])
            // A message that can never be sent is written as failed, with its reason.
            let markInvalid = try database.cached("UPDATE outbox SET state = 'failed', reason = ?2 WHERE id = ?1")
            for (id, message) in invalid {
                try markInvalid.execute([.integer(id), .text(message.reason)])
            }
            return WrittenRun(runId: runId, invalid: invalid.map(\.message))
        }
    }

    // MARK: Pending work

    func pendingCount(_ pair: PairName) throws -> Int {
        try count("SELECT count(*) FROM outbox WHERE \(Self.pendingOfBoundPair)", bound(pair))
    }

    /// The pairs that have rows in the partial index are found by seeking from one to the next (a
    /// handful of pairs, however many rows), then each is asked for its oldest row above its mark.
    func pendingPairs() throws -> [PairName] {
        let first = try database.cached(
            "SELECT key, destination FROM outbox WHERE state = 'pending' ORDER BY key, destination LIMIT 1")
        let next = try database.cached(
            """
            SELECT key, destination FROM outbox WHERE state = 'pending' AND (key, destination) > (?1, ?2)
            ORDER BY key, destination LIMIT 1
            """)
        let oldest = try database.cached("SELECT min(id) FROM outbox WHERE \(Self.pendingOfBoundPair)")
        var found: [(pair: PairName, oldest: Int64)] = []
        var row = try first.rows().first
        while let current = row, let key = current[0].string, let destination = current[1].string {
            let pair = PairName(key: key, destination: destination)
            if let id = try oldest.scalar(bound(pair))?.int64 { found.append((pair, id)) }
            row = try next.rows(bound(pair)).first
        }
        return found.sorted { $0.oldest < $1.oldest }.map(\.pair)
    }

    func pendingMessages(_ pair: PairName, after id: Int64, limit: Int) throws -> [OutboundMessage] {
        try database.cached(
            """
            SELECT o.id, o.user_id, o.message_id, m.message FROM outbox o JOIN outbox_messages m ON m.id = o.id
            WHERE o.key = ?1 AND o.destination = ?2 AND o.state = 'pending' AND o.id > max(?3, \(Self.markOfBoundPair))
            ORDER BY o.id LIMIT ?4
            """
        ).rows(bound(pair) + [.integer(id), .integer(Int64(limit))]).compactMap { row in
            guard let id = row[0].int64, let userId = row[1].string, let messageId = row[2].string,
                let body = row[3].string
            else { return nil }
            return OutboundMessage(id: id, userId: userId, messageId: messageId, body: body)
        }
    }

    // MARK: Acknowledging

    /// The pair's pending rows with ids in (?3, ?4].
    private static let inRange =
        "key = ?1 AND destination = ?2 AND state = 'pending' AND id > max(?3, \(markOfBoundPair)) AND id <= ?4"

    /// The batch is exactly the pair's pending rows in (after, through], each user once, so the
    /// order of the snapshot writes does not matter; and every earlier row of the pair is resolved
    /// (delivery goes in id order and stops at the first batch not resolved whole), so the mark may
    /// move to `through`.
    func acknowledge(_ pair: PairName, after: Int64, through: Int64, count expected: Int) throws {
        let range = bound(pair) + [.integer(after), .integer(through)]
        try database.inTransaction(.immediate) {
            let marked = try count("SELECT count(*) FROM outbox WHERE \(Self.inRange)", range)
            guard marked == expected else {
                throw AudienceSyncError(
                    .store,
                    "outbox of \(pair.key) → \(pair.destination) changed during delivery (\(marked) of \(expected) rows)")
            }
            try database.cached(
                """
                INSERT INTO snapshots (key, destination, user_id, value)
                SELECT key, destination, user_id, value FROM outbox WHERE \(Self.inRange) AND removes = 0
                ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
                """
            ).execute(range)
            try database.cached(
                """
                DELETE FROM snapshots WHERE key = ?1 AND destination = ?2 AND user_id IN (
                    SELECT user_id FROM outbox WHERE \(Self.inRange) AND removes = 1
                )
                """
            ).execute(range)
            try database.cached(
                """
                INSERT INTO outbox_marks (key, destination, through_id) VALUES (?1, ?2, ?3)
                ON CONFLICT (key, destination) DO UPDATE SET through_id = max(through_id, excluded.through_id)
                """
            ).execute(bound(pair) + [.integer(through)])
        }
    }

    func record(_ outcomes: [MessageOutcome], at time: Int64) throws {
        let markDelivered = try database.cached("UPDATE outbox SET state = 'delivered', updated_at = ?2 WHERE id = ?1")
        let markFailed = try database.cached(
            "UPDATE outbox SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1")
        let apply = try database.cached(
            """
            INSERT INTO snapshots (key, destination, user_id, value)
            SELECT key, destination, user_id, value FROM outbox WHERE id = ?1 AND removes = 0
            ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
            """)
        let remove = try database.cached(
            """
            DELETE FROM snapshots WHERE (key, destination, user_id) IN
                (SELECT key, destination, user_id FROM outbox WHERE id = ?1 AND removes = 1)
            """)
        try database.inTransaction(.immediate) {
            for outcome in outcomes {
                switch outcome.result {
                case .acknowledged:
                    try markDelivered.execute([.integer(outcome.id), .integer(time)])
                    try apply.execute([.integer(outcome.id)])
                    try remove.execute([.integer(outcome.id)])
                case .failed(let reason):
                    try markFailed.execute([.integer(outcome.id), .text(reason), .integer(time)])
                case .pending:
                    break
                }
            }
        }
    }

    // MARK: Runs

    func finishRun(_ runId: Int64, durationMilliseconds: Int64?) throws {
        try database.inTransaction(.immediate) {
            let row =
                try database.cached(
                    """
                    SELECT sum(o.state = 'delivered' OR (o.state = 'pending' AND o.id <= m.mark)), sum(o.state = 'failed'),
                        sum(o.state = 'pending' AND o.id > m.mark)
                    FROM outbox o, (
                        SELECT \(Self.mark(key: "r.key", destination: "r.destination")) AS mark FROM runs r WHERE r.id = ?1
                    ) m
                    WHERE o.run_id = ?1
                    """
                ).rows([.integer(runId)]).first ?? []
            let sent = row.first?.int64 ?? 0
            let failed = row.count > 1 ? row[1].int64 ?? 0 : 0
            let pending = row.count > 2 ? row[2].int64 ?? 0 : 0
            let outcome = pending > 0 ? "failed" : failed > 0 ? "partial" : "ok"
            try database.cached(
                """
                UPDATE runs SET sent = ?2, failed = ?3, outcome = ?4, duration_ms = coalesce(?5, duration_ms) WHERE id = ?1
                """
            ).execute([.integer(runId), .integer(sent), .integer(failed), .text(outcome), .integer(durationMilliseconds)])
            if pending == 0 {
                try database.cached(
                    """
                    INSERT INTO pairs (key, destination, last_synced_at)
                    SELECT key, destination, started_at FROM runs WHERE id = ?1
                    ON CONFLICT (key, destination) DO UPDATE SET last_synced_at = max(last_synced_at, excluded.last_synced_at)
                    """
                ).execute([.integer(runId)])
            }
        }
    }

    func unfinishedRuns(_ pair: PairName) throws -> [Int64] {
        try database.cached(
            "SELECT id FROM runs WHERE key = ?1 AND destination = ?2 AND outcome IN ('running', 'failed') ORDER BY id"
        ).rows(bound(pair)).compactMap { $0[0].int64 }
    }

    func lastRun(_ pair: PairName) throws -> RunSummary? {
        guard
            let row = try database.cached(
                "SELECT outcome, failed FROM runs WHERE key = ?1 AND destination = ?2 ORDER BY id DESC LIMIT 1"
            ).rows(bound(pair)).first, let outcome = row[0].string
        else { return nil }
        return RunSummary(outcome: outcome, failed: Int(row[1].int64 ?? 0))
    }

    /// Finds the rows through `runs` and the outbox's run index, never by scanning the outbox; a
    /// run's rows are all of its pair, so the pair's mark is looked up once per run.
    func pruneDeliveredMessages(startedBefore cutoff: Int64) throws {
        let delivered = """
            SELECT o.id FROM runs r JOIN outbox o ON o.run_id = r.id
            WHERE r.started_at < ?1 AND o.id < (SELECT max(id) FROM outbox) AND (
                o.state = 'delivered'
                OR (o.state = 'pending' AND o.id <= \(Self.mark(key: "r.key", destination: "r.destination")))
            )
            """
        try database.inTransaction(.immediate) {
            try database.prepare("DELETE FROM outbox_messages WHERE id IN (\(delivered))").execute([.integer(cutoff)])
            try database.prepare("DELETE FROM outbox WHERE id IN (\(delivered))").execute([.integer(cutoff)])
        }
    }

    // MARK: Snapshots

    func snapshotSizes() throws -> [PairSize] {
        try database.cached("SELECT key, destination, count(*) FROM snapshots GROUP BY key, destination ORDER BY 1, 2")
            .rows().compactMap { row in
                guard let key = row[0].string, let destination = row[1].string else { return nil }
                return PairSize(pair: PairName(key: key, destination: destination), count: Int(row[2].int64 ?? 0))
            }
    }

    func destinationsHoldingState(key: String) throws -> [String] {
        try database.cached(
            """
            SELECT destination FROM snapshots WHERE key = ?1
            UNION SELECT o.destination FROM outbox o WHERE o.key = ?1 AND o.state = 'pending'
                AND o.id > \(Self.mark(key: "o.key", destination: "o.destination"))
            UNION SELECT destination FROM pairs WHERE key = ?1
            ORDER BY 1
            """
        ).rows([.text(key)]).compactMap { $0[0].string }
    }

    func lastMessage(key: String) throws -> String? {
        try database.cached(
            "SELECT m.message FROM outbox o JOIN outbox_messages m ON m.id = o.id WHERE o.key = ?1 ORDER BY o.id DESC LIMIT 1"
        ).scalar([.text(key)])?.string
    }

    func snapshotHoldsValuesOtherThanTrue(key: String) throws -> Bool {
        try database.cached("SELECT 1 FROM snapshots WHERE key = ?1 AND value <> 'true' LIMIT 1").scalar([.text(key)]) != nil
    }

    func dropPairIfRetired(_ pair: PairName) throws -> Bool {
        try database.inTransaction(.immediate) {
            let left = try count(
                """
                SELECT (SELECT count(*) FROM snapshots WHERE key = ?1 AND destination = ?2)
                     + (SELECT count(*) FROM outbox WHERE \(Self.pendingOfBoundPair))
                """, bound(pair))
            guard left == 0 else { return false }
            try database.cached("DELETE FROM pairs WHERE key = ?1 AND destination = ?2").execute(bound(pair))
            return true
        }
    }
}

extension SQLiteStore {
    public func pairRecord(_ pair: PairName) async throws -> PairRecord {
        try await connection.run { try SQLiteSyncState(database: $0).pairRecord(pair) }
    }

    public func nextRunId() async throws -> Int64 {
        try await connection.run { try SQLiteSyncState(database: $0).nextRunId() }
    }

    public func stageDiff(_ request: DiffRequest) async throws -> PairDiff {
        try await connection.run { try SQLitePairDiff(database: $0).stage(request) }
    }

    public func stagedChanges(from position: Int, limit: Int) async throws -> [PairChange] {
        try await connection.run { try SQLitePairDiff(database: $0).changes(from: position, limit: limit) }
    }

    public func writeRun(_ run: OutboxRun) async throws -> WrittenRun? {
        try await connection.run { try SQLiteSyncState(database: $0).writeRun(run) }
    }

    public func pendingPairs() async throws -> [PairName] {
        try await connection.run { try SQLiteSyncState(database: $0).pendingPairs() }
    }

    public func pendingCount(_ pair: PairName) async throws -> Int {
        try await connection.run { try SQLiteSyncState(database: $0).pendingCount(pair) }
    }

    public func pendingMessages(_ pair: PairName, after id: Int64, limit: Int) async throws -> [OutboundMessage] {
        try await connection.run { try SQLiteSyncState(database: $0).pendingMessages(pair, after: id, limit: limit) }
    }

    public func acknowledge(_ pair: PairName, after: Int64, through: Int64, count: Int) async throws {
        try await connection.run {
            try SQLiteSyncState(database: $0).acknowledge(pair, after: after, through: through, count: count)
        }
    }

    public func record(_ outcomes: [MessageOutcome], at time: Int64) async throws {
        try await connection.run { try SQLiteSyncState(database: $0).record(outcomes, at: time) }
    }

    public func finishRun(_ runId: Int64, durationMilliseconds: Int64?) async throws {
        try await connection.run {
            try SQLiteSyncState(database: $0).finishRun(runId, durationMilliseconds: durationMilliseconds)
        }
    }

    public func unfinishedRuns(_ pair: PairName) async throws -> [Int64] {
        try await connection.run { try SQLiteSyncState(database: $0).unfinishedRuns(pair) }
    }

    public func lastRun(_ pair: PairName) async throws -> RunSummary? {
        try await connection.run { try SQLiteSyncState(database: $0).lastRun(pair) }
    }

    public func pruneDeliveredMessages(startedBefore cutoff: Int64) async throws {
        try await connection.run { try SQLiteSyncState(database: $0).pruneDeliveredMessages(startedBefore: cutoff) }
    }

    public func snapshotSizes() async throws -> [PairSize] {
        try await connection.run { try SQLiteSyncState(database: $0).snapshotSizes() }
    }

    public func destinationsHoldingState(key: String) async throws -> [String] {
        try await connection.run { try SQLiteSyncState(database: $0).destinationsHoldingState(key: key) }
    }

    public func lastMessage(key: String) async throws -> String? {
        try await connection.run { try SQLiteSyncState(database: $0).lastMessage(key: key) }
    }

    public func snapshotHoldsValuesOtherThanTrue(key: String) async throws -> Bool {
        try await connection.run { try SQLiteSyncState(database: $0).snapshotHoldsValuesOtherThanTrue(key: key) }
    }

    public func dropPairIfRetired(_ pair: PairName) async throws -> Bool {
        try await connection.run { try SQLiteSyncState(database: $0).dropPairIfRetired(pair) }
    }
}
