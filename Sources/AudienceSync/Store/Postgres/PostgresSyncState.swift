import Logging
import NIOCore
import PostgresNIO

/// The sync state (SPEC §6, §12) on PostgreSQL's tables (`PostgresSchema` migration 2): snapshots,
/// runs, pairs, the outbox with its messages, and the per-pair delivery marks — the statements of
/// `SQLiteSyncState` in PostgreSQL's spelling, with the same guarantees:
///
/// - a run's outbox is written in one transaction, before anything is sent: the run row, then
///   every message with `COPY … FROM STDIN`, made in Swift by the run's `OutboxMessageMaker` (the
///   bytes and messageIds SQLite's SQL functions make), a message that can never be sent written
///   as failed;
/// - an acknowledged batch moves its pair's mark and updates the snapshot in one transaction
///   (one statement each, set-based); a refused message is marked failed and never applied;
/// - pending messages are read back as written (same text, same messageId);
/// - outbox ids come from a sequence, which never goes back, and pruning keeps the newest row
///   anyway: a mark never covers a row written after it.
///
/// "Pending" has one definition, `pendingOfPair`: an outbox row in state `pending` above its pair's
/// delivery mark. A lost connection fails the transaction it was in, which PostgreSQL rolls back:
/// what was acknowledged before stays, the rest stays pending for the next run, as after a crash.
extension PostgresStore {
    /// SQL: the delivery mark of the pair whose key and destination are the SQL expressions `key`
    /// and `destination` (placeholders, or an outer query's columns); 0 without a mark. The
    /// arguments are the program's own SQL, never user input.
    static func mark(key: String, destination: String) -> String {
        """
        coalesce((SELECT marks.through_id FROM outbox_marks marks \
        WHERE marks.key = \(key) AND marks.destination = \(destination)), 0)
        """
    }

    /// SQL: the pair's (`$1` key, `$2` destination) outbox rows still owed to the destination,
    /// through the partial index `outbox_pending`, above the pair's mark.
    static let pendingOfPair =
        "key = $1 AND destination = $2 AND state = 'pending' AND id > \(mark(key: "$1", destination: "$2"))"

    /// The columns of an outbox row a run writes (the id comes from the outbox's sequence, in the
    /// order of the rows: the order of the changes).
    static let outboxColumns = [
        "run_id", "key", "destination", "user_id", "value", "removes", "message_id", "message", "state", "reason",
        "created_at", "updated_at",
    ]

    /// About this many bytes of COPY data are sent at a time.
    static let copyChunkBytes = 1 << 22

    private func bound(_ pair: PairName) -> [SQLValue] { [.text(pair.key), .text(pair.destination)] }

    private func requireWritable() throws {
        guard access == .readWrite else {
            throw AudienceSyncError(.store, "\(location): the store is open for reading only; nothing can be written")
        }
    }

    /// Runs `body` in a transaction on a connection of the pool: committed when it returns, rolled
    /// back when it throws (its error is the one reported). `readOnly` makes PostgreSQL refuse any
    /// write in it; a transaction that may write first checks that a sync lock this process took
    /// is still held (`checkSyncLock`).
    func inTransaction<T: Sendable>(readOnly: Bool = false, _ body: (PostgresConnection) async throws -> T)
        async throws -> T
    {
        try await withConnection { connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: readOnly ? "START TRANSACTION READ ONLY" : "BEGIN"), logger: logger)
            do {
                if !readOnly { try await checkSyncLock(on: connection) }
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                // On a lost connection the server has rolled back already.
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs `sql` with `binds` on `connection` and returns its rows made by `make`.
    private func rows<T>(
        _ sql: String, _ binds: PostgresBindings, on connection: PostgresConnection, _ make: (PostgresRow) throws -> T
    ) async throws -> [T] {
        var result: [T] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            result.append(try make(row))
        }
        return result
    }

    private func rows<T>(
        _ sql: String, _ binds: [SQLValue], on connection: PostgresConnection, _ make: (PostgresRow) throws -> T
    ) async throws -> [T] {
        try await rows(sql, PostgresBindings(binds), on: connection, make)
    }

    private func execute(_ sql: String, _ binds: PostgresBindings, on connection: PostgresConnection) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }

    private func execute(_ sql: String, _ binds: [SQLValue], on connection: PostgresConnection) async throws {
        try await execute(sql, PostgresBindings(binds), on: connection)
    }

    /// The first column of the first row of `sql` as an integer (0 when there is no row or it is NULL).
    private func count(_ sql: String, _ binds: [SQLValue], on connection: PostgresConnection) async throws -> Int {
        Int(try await rows(sql, binds, on: connection) { try $0.decode(Int64?.self) }.first.flatMap { $0 } ?? 0)
    }

    // MARK: Pairs

    public func pairRecord(_ pair: PairName) async throws -> PairRecord {
        let values = bound(pair)
        let record = try await withConnection { connection in
            try await rows(
                """
                SELECT (SELECT last_synced_at FROM pairs WHERE key = $1 AND destination = $2),
                    EXISTS (SELECT 1 FROM snapshots WHERE key = $1 AND destination = $2)
                """, values, on: connection
            ) { try $0.decode((Int64?, Bool).self) }.first
        }
        let (lastSyncedAt, hasSnapshot) = record ?? (nil, false)
        return PairRecord(lastSyncedAt: lastSyncedAt, isFirstSync: lastSyncedAt == nil && !hasSnapshot)
    }

    /// What the run ids' sequence gives next (it never goes back: a run id is never reused).
    public func nextRunId() async throws -> Int64 {
        try await withConnection { connection in
            try await rows("SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM run_ids", [], on: connection) {
                try $0.decode(Int64.self)
            }.first ?? 1
        }
    }

    // MARK: Diff

    /// The diff's statement: the members (`request.members`, its placeholders `$1`…`$n`) fully
    /// joined with the snapshot that the pair's pending work is laid over (the last pending row of
    /// a user is what the snapshot becomes), by user id. It returns a row of counts (kind 0, no
    /// user) and each change — `1` entered, `2` exited, `3` changed — with its user and value, in
    /// user-id byte order (every id column is `COLLATE "C"`).
    ///
    /// The pending rows above the mark are also bounded by the pair's last pending row (found at
    /// the end of its range of the partial index `outbox_pending`): every row stays `pending` once
    /// the mark covers it, so the planner, which cannot see that the rows above a pair's mark are
    /// few, may read them through the primary key from the mark on — over every later row of other
    /// pairs (0.5 s for 100,000 rows of the next destination) — unless the range ends there too.
    static func diffQuery(_ request: DiffRequest) -> PostgresQuery {
        let members = request.members
        let audience = request.kind == .audience
        var binds = members.binds
        binds += [.text(request.pair.key), .text(request.pair.destination), .text(audience ? "false" : "null")]
        let key = "$\(members.binds.count + 1)"
        let destination = "$\(members.binds.count + 2)"
        let gone = "$\(members.binds.count + 3)"
        let sql = """
            WITH members AS (
                SELECT m.uid COLLATE "C" AS user_id, \(audience ? "'true'::text" : "(m.value)::text") AS value
                FROM (\(members.sql)) AS m
                WHERE m.uid IS NOT NULL\(audience ? "" : " AND m.value IS NOT NULL")
            ), synced AS (
                SELECT user_id, value FROM snapshots WHERE key = \(key) AND destination = \(destination)
            ), queued AS (
                SELECT user_id, value, removes, id FROM outbox
                WHERE key = \(key) AND destination = \(destination) AND state = 'pending'
                    AND id > \(mark(key: key, destination: destination))
                    AND id <= (SELECT max(id) FROM outbox
                        WHERE key = \(key) AND destination = \(destination) AND state = 'pending')
            ), base AS (
                SELECT coalesce(q.user_id, s.user_id) AS user_id, coalesce(q.value, s.value) AS value,
                    coalesce(q.removes, false) AS removes
                FROM synced s FULL JOIN (
                    SELECT DISTINCT ON (user_id) user_id, value, removes FROM queued ORDER BY user_id, id DESC
                ) q ON q.user_id = s.user_id
            ), diff AS (
                SELECT coalesce(c.user_id, b.user_id) AS user_id, c.user_id IS NOT NULL AS member,
                    CASE
                        WHEN c.user_id IS NULL THEN CASE WHEN NOT b.removes THEN 2 END
                        WHEN b.user_id IS NULL OR b.removes THEN 1
                        WHEN b.value <> c.value THEN 3
                    END AS kind,
                    coalesce(c.value, \(gone)::text) AS value
                FROM members c FULL JOIN base b ON b.user_id = c.user_id
            )
            SELECT 0 AS kind, NULL AS user_id, NULL AS value, (SELECT count(*) FROM diff WHERE member) AS members,
                (SELECT count(*) FROM synced) AS synced, (SELECT count(*) FROM queued) AS pending
            UNION ALL
            SELECT kind, user_id, value, NULL, NULL, NULL FROM diff WHERE kind IS NOT NULL
            ORDER BY user_id NULLS FIRST
            """
        return PostgresQuery(unsafeSQL: sql, binds: PostgresBindings(binds))
    }

    /// Runs the diff's statement in a read-only transaction (it writes nothing, on any store) and
    /// keeps its changes in memory (`PostgresStagedChanges`).
    public func stageDiff(_ request: DiffRequest) async throws -> PairDiff {
        // A failed diff leaves no earlier one to be written by mistake.
        stagedDiff.withLockedValue { $0 = nil }
        let query = Self.diffQuery(request)
        let sampleSize = request.sampleSize
        let (staged, diff) = try await inTransaction(readOnly: true) { connection in
            // No JIT (the store's sessions run with `jit = off`, PostgresLocation): the statement's
            // cost is estimated far above what it takes (a subplan per event), and PostgreSQL would
            // spend about 3 s compiling a diff of 100,000 members that then takes 2 s.
            var staged = PostgresStagedChanges(pair: request.pair)
            var counts = PairCounts()
            var sample: [PairChange.Kind: [String]] = [.entered: [], .exited: [], .changed: []]
            for try await row in try await connection.query(query, logger: logger) {
                var cells = row.makeIterator()
                guard let kindCell = cells.next(), let userCell = cells.next(), let valueCell = cells.next() else {
                    continue
                }
                let kind: PairChange.Kind
                switch try kindCell.decode(Int.self) {
                case 0:
                    counts.members = Int(try cells.next()?.decode(Int64.self) ?? 0)
                    counts.synced = Int(try cells.next()?.decode(Int64.self) ?? 0)
                    counts.pending = Int(try cells.next()?.decode(Int64.self) ?? 0)
                    continue
                case 1:
                    kind = .entered
                    counts.entered += 1
                case 2:
                    kind = .exited
                    counts.exited += 1
                default:
                    kind = .changed
                    counts.changed += 1
                }
                guard let user = userCell.bytes, let value = valueCell.bytes else { continue }
                staged.append(userId: user.readableBytesView, value: value.readableBytesView, kind: kind)
                if sample[kind, default: []].count < sampleSize {
                    sample[kind, default: []].append(String(buffer: user))
                }
            }
            counts.unchanged = counts.members - counts.entered - counts.changed
            return (staged, PairDiff(counts: counts, sample: sample))
        }
        stagedDiff.withLockedValue { $0 = staged }
        return diff
    }

    public func stagedChanges(from position: Int, limit: Int) async throws -> [PairChange] {
        guard let staged = stagedDiff.withLockedValue({ $0 }) else {
            throw AudienceSyncError(.store, "\(location): no diff has been staged")
        }
        return staged.changes(from: position, limit: limit)
    }

    // MARK: Writing a run

    /// Writes the run and its outbox rows in one transaction: the changes (the last diff's, or the
    /// snapshot's users read in this transaction) are made into messages in Swift, in user-id
    /// order, and copied into the outbox as they are made; no statement per change.
    public func writeRun(_ run: OutboxRun) async throws -> WrittenRun? {
        try requireWritable()
        let staged: PostgresStagedChanges?
        if case .stagedDiff = run.changes {
            guard let diff = stagedDiff.withLockedValue({ $0 }), diff.pair == run.pair else {
                throw AudienceSyncError(
                    .store, "\(location): no diff of \(run.pair.key) → \(run.pair.destination) is staged to write")
            }
            staged = diff
        } else {
            staged = nil
        }
        let pair = bound(run.pair)
        return try await inTransaction { connection -> WrittenRun? in
            let changes: PostgresStagedChanges
            switch run.changes {
            case .stagedDiff:
                changes = staged ?? PostgresStagedChanges(pair: run.pair)
            case .removals(let value):
                changes = try await removals(of: run.pair, value: value, on: connection)
                guard changes.count > 0 else { return nil }
            }
            let runId = try await rows(
                "INSERT INTO runs (started_at, key, destination, first_sync) VALUES ($1, $2, $3, $4) RETURNING id",
                [.integer(run.startedAt)] + pair + [.boolean(run.firstSync)], on: connection
            ) { try $0.decode(Int64.self) }.first
            guard let runId else { throw AudienceSyncError(.store, "\(location): the run was not written") }
            let invalid = try await copyOutbox(changes, of: run, runId: runId, on: connection)
            return WrittenRun(runId: runId, invalid: invalid)
        }
    }

    /// A removal with `value` of every user of the pair's snapshot, in user-id order.
    private func removals(of pair: PairName, value: String, on connection: PostgresConnection) async throws
        -> PostgresStagedChanges
    {
        var changes = PostgresStagedChanges(pair: pair)
        let query = PostgresQuery(
            unsafeSQL: "SELECT user_id FROM snapshots WHERE key = $1 AND destination = $2 ORDER BY user_id",
            binds: PostgresBindings(bound(pair)))
        for try await row in try await connection.query(query, logger: logger) {
            var cells = row.makeIterator()
            guard let user = cells.next()?.bytes else { continue }
            changes.append(userId: user.readableBytesView, value: value.utf8, kind: .exited)
        }
        return changes
    }

    /// Makes each change's message with the run's maker and copies the rows into the outbox, a few
    /// megabytes at a time; returns the messages written as failed because they can never be sent.
    private func copyOutbox(
        _ changes: PostgresStagedChanges, of run: OutboxRun, runId: Int64, on connection: PostgresConnection
    ) async throws -> [InvalidMessage] {
        guard changes.count > 0 else { return [] }
        let maker = run.messages
        let messageIDs = maker.messageIDs(runId: runId)
        // The columns every row of the run shares: run id, key, destination; and the times.
        var head = ByteBufferAllocator().buffer(capacity: 64)
        head.writeString(String(runId))
        for text in [run.pair.key, run.pair.destination] {
            head.writeInteger(UInt8(ascii: "\t"))
            Self.appendCopyText(text, to: &head)
        }
        head.writeInteger(UInt8(ascii: "\t"))
        let times = "\t\(run.startedAt)\t\(run.startedAt)\n"
        var invalid: [InvalidMessage] = []
        var body: [UInt8] = []
        try await connection.copyFrom(table: "outbox", columns: Self.outboxColumns, logger: logger) { writer in
            var buffer = ByteBufferAllocator().buffer(capacity: Self.copyChunkBytes + 64 * 1024)
            for index in 0..<changes.count {
                let change = changes[index]
                let messageId = messageIDs.id(userId: change.userId, value: change.value)
                let reason: String?
                do {
                    reason = try maker.write(userId: change.userId, value: change.value, messageId: messageId, into: &body)
                } catch {
                    throw AudienceSyncError(.store, "the value of \(change.userId) is not JSON: \(error)")
                }
                if let reason { invalid.append(InvalidMessage(userId: change.userId, reason: reason)) }
                buffer.writeImmutableBuffer(head)
                changes.withBytes(of: index) { user, value in
                    PostgresEventWriter.appendText(user, to: &buffer)
                    buffer.writeInteger(UInt8(ascii: "\t"))
                    PostgresEventWriter.appendText(value, to: &buffer)
                }
                buffer.writeString(change.removes ? "\tt\t" : "\tf\t")
                Self.appendCopyText(messageId, to: &buffer)
                buffer.writeInteger(UInt8(ascii: "\t"))
                body.withUnsafeBytes { PostgresEventWriter.appendText($0, to: &buffer) }
                if let reason {
                    buffer.writeString("\tfailed\t")
                    Self.appendCopyText(reason, to: &buffer)
                } else {
                    buffer.writeString("\tpending\t\\N")
                }
                buffer.writeString(times)
                if buffer.readableBytes >= Self.copyChunkBytes {
                    try await writer.write(buffer)
                    buffer.clear()
                }
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
        }
        return invalid
    }

    /// `text` as one column of COPY's text format.
    private static func appendCopyText(_ text: String, to buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { PostgresEventWriter.appendText(UnsafeRawBufferPointer($0), to: &buffer) }
    }

    // MARK: Pending work

    public func pendingCount(_ pair: PairName) async throws -> Int {
        let values = bound(pair)
        return try await withConnection { connection in
            try await count("SELECT count(*) FROM outbox WHERE \(Self.pendingOfPair)", values, on: connection)
        }
    }

    /// The pairs with rows in the partial index are found by seeking from one to the next (a
    /// handful of pairs, however many rows: a recursive skip scan), then each is asked for its
    /// oldest row above its mark.
    public func pendingPairs() async throws -> [PairName] {
        try await withConnection { connection in
            try await rows(
                """
                WITH RECURSIVE listed (key, destination) AS (
                    (SELECT key, destination FROM outbox WHERE state = 'pending' ORDER BY key, destination LIMIT 1)
                    UNION ALL
                    SELECT next.key, next.destination FROM listed p CROSS JOIN LATERAL (
                        SELECT o.key, o.destination FROM outbox o
                        WHERE o.state = 'pending' AND (o.key, o.destination) > (p.key, p.destination)
                        ORDER BY o.key, o.destination LIMIT 1
                    ) next
                )
                SELECT key, destination FROM (
                    SELECT p.key, p.destination, (
                        SELECT min(o.id) FROM outbox o
                        WHERE o.key = p.key AND o.destination = p.destination AND o.state = 'pending'
                            AND o.id > \(Self.mark(key: "p.key", destination: "p.destination"))
                    ) AS oldest
                    FROM listed p
                ) found
                WHERE oldest IS NOT NULL
                ORDER BY oldest
                """, [], on: connection
            ) { row in
                let (key, destination) = try row.decode((String, String).self)
                return PairName(key: key, destination: destination)
            }
        }
    }

    public func pendingMessages(_ pair: PairName, after id: Int64, limit: Int) async throws -> [OutboundMessage] {
        let values = bound(pair) + [.integer(id), .integer(Int64(limit))]
        return try await withConnection { connection in
            try await rows(
                """
                SELECT id, user_id, message_id, message FROM outbox
                WHERE key = $1 AND destination = $2 AND state = 'pending'
                    AND id > greatest($3, \(Self.mark(key: "$1", destination: "$2")))
                ORDER BY id LIMIT $4
                """, values, on: connection
            ) { row in
                let (id, userId, messageId, body) = try row.decode((Int64, String, String, String).self)
                return OutboundMessage(id: id, userId: userId, messageId: messageId, body: body)
            }
        }
    }

    // MARK: Acknowledging

    /// The pair's pending rows with ids in (`$3`, `$4`].
    private static let inRange = """
        key = $1 AND destination = $2 AND state = 'pending' AND id > greatest($3, \(mark(key: "$1", destination: "$2"))) \
        AND id <= $4
        """

    /// The batch is exactly the pair's pending rows in (after, through] (read in the transaction,
    /// and counted); every earlier row of the pair is resolved (delivery goes in id order and stops
    /// at the first batch not resolved whole), so the mark may move to `through`. The last row of
    /// each user in the batch is what the snapshot becomes (a batch has each user once, but a
    /// second row of a user must not make the transaction fail).
    ///
    /// One statement does it all on the server, so that the batch's rows never travel to this
    /// process and back: the rows read once (`batch`), the last of each user (`latest`), the
    /// removals deleted and the rest written through the snapshot's primary key, the mark moved;
    /// it answers the number of rows it found, and a number other than `count` rolls the whole
    /// transaction back. Every part reads the table as it was when the statement began (the
    /// mark included), and the deleted and the written users are disjoint. The removals are found
    /// with `= ANY (ARRAY(…))` on the primary key, not a join: a join of the snapshot with the
    /// batch is planned from statistics that a first sync makes stale as it goes (the pair's
    /// snapshot and pending rows grow from nothing to millions between two ANALYZEs), and such a
    /// plan once scanned the pair's whole snapshot for every batch. For the same reason the
    /// `DELETE` runs only when the batch removes someone (a one-time filter): believing the pair
    /// to have a handful of rows, the planner reads all of the pair's snapshot rows and filters
    /// them by the array, which during a first sync (no removals at all) grew with every batch.
    public func acknowledge(_ pair: PairName, after: Int64, through: Int64, count expected: Int) async throws {
        try requireWritable()
        let range = bound(pair) + [.integer(after), .integer(through)]
        try await inTransaction { connection in
            let marked = try await count(
                """
                WITH batch AS MATERIALIZED (
                    SELECT id, user_id, value, removes FROM outbox WHERE \(Self.inRange)
                ), latest AS MATERIALIZED (
                    SELECT DISTINCT ON (user_id) user_id, value, removes FROM batch ORDER BY user_id, id DESC
                ), removed AS (
                    DELETE FROM snapshots WHERE (SELECT bool_or(removes) FROM latest)
                        AND key = $1 AND destination = $2
                        AND user_id = ANY (ARRAY(SELECT user_id FROM latest WHERE removes))
                ), written AS (
                    INSERT INTO snapshots (key, destination, user_id, value)
                    SELECT $1, $2, user_id, value FROM latest WHERE NOT removes
                    ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
                ), marked AS (
                    INSERT INTO outbox_marks (key, destination, through_id) VALUES ($1, $2, $4)
                    ON CONFLICT (key, destination)
                    DO UPDATE SET through_id = greatest(outbox_marks.through_id, excluded.through_id)
                )
                SELECT count(*) FROM batch
                """, range, on: connection)
            guard marked == expected else {
                throw AudienceSyncError(
                    .store,
                    "outbox of \(pair.key) → \(pair.destination) changed during delivery (\(marked) of \(expected) rows)")
            }
        }
    }

    /// Applies the last change of each user to the pair's snapshot: the removals deleted, the rest
    /// written (inserted, or their value replaced).
    ///
    /// The users come as bound arrays, so that each statement finds its rows through the snapshot's
    /// primary key whatever the planner believes of the tables. A join of the snapshot with the
    /// batch's outbox rows, as this was written before, is planned from statistics that a first
    /// sync makes stale as it goes (the pair's snapshot and pending rows grow from nothing to
    /// millions between two ANALYZEs): estimating one row on each side, the planner chose to scan
    /// the pair's whole snapshot and look each row up in the batch — a cost that grew with every
    /// batch delivered (20 s for the second batch of 10,000).
    private func apply(_ latest: SnapshotChanges, to pair: PairName, on connection: PostgresConnection) async throws {
        let (written, values, removed) = latest.arrays
        if !removed.isEmpty {
            var binds = PostgresBindings(capacity: 3)
            binds.append(pair.key)
            binds.append(pair.destination)
            binds.append(removed)
            try await execute(
                "DELETE FROM snapshots WHERE key = $1 AND destination = $2 AND user_id = ANY($3::text[])", binds,
                on: connection)
        }
        if !written.isEmpty {
            var binds = PostgresBindings(capacity: 4)
            binds.append(pair.key)
            binds.append(pair.destination)
            binds.append(written)
            binds.append(values)
            try await execute(
                """
                INSERT INTO snapshots (key, destination, user_id, value)
                SELECT $1, $2, u.user_id, u.value FROM unnest($3::text[], $4::text[]) AS u(user_id, value)
                ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
                """, binds, on: connection)
        }
    }

    /// Set-based too: the acknowledged rows marked delivered and the last of each user applied to
    /// the snapshot (the outcomes' order decides which is last), the refused ones marked failed
    /// with their reasons; a few statements in one transaction, however many messages.
    public func record(_ outcomes: [MessageOutcome], at time: Int64) async throws {
        try requireWritable()
        var acknowledged: [Int64] = []
        var failed: [Int64] = []
        var reasons: [String] = []
        for outcome in outcomes {
            switch outcome.result {
            case .acknowledged: acknowledged.append(outcome.id)
            case .failed(let reason):
                failed.append(outcome.id)
                reasons.append(reason)
            case .pending: break
            }
        }
        guard !acknowledged.isEmpty || !failed.isEmpty else { return }
        try await inTransaction { connection in
            if !acknowledged.isEmpty {
                var binds = PostgresBindings(capacity: 2)
                binds.append(acknowledged)
                binds.append(time)
                try await execute(
                    "UPDATE outbox SET state = 'delivered', updated_at = $2 WHERE id = ANY($1::bigint[])", binds,
                    on: connection)
                // The acknowledged rows in the outcomes' order, per pair: the last of each user wins.
                var latest: [PairName: SnapshotChanges] = [:]
                var order: [PairName] = []
                var rows = PostgresBindings(capacity: 1)
                rows.append(acknowledged)
                let query = PostgresQuery(
                    unsafeSQL: """
                        SELECT o.key, o.destination, o.user_id, o.value, o.removes
                        FROM unnest($1::bigint[]) WITH ORDINALITY AS a(id, position) JOIN outbox o ON o.id = a.id
                        ORDER BY a.position
                        """, binds: rows)
                for try await row in try await connection.query(query, logger: logger) {
                    let (key, destination, userId, value, removes) = try row.decode((String, String, String, String, Bool).self)
                    let pair = PairName(key: key, destination: destination)
                    if latest[pair] == nil { order.append(pair) }
                    latest[pair, default: SnapshotChanges()].set(userId, value: value, removes: removes)
                }
                for pair in order {
                    try await apply(latest[pair] ?? SnapshotChanges(), to: pair, on: connection)
                }
            }
            if !failed.isEmpty {
                var binds = PostgresBindings(capacity: 3)
                binds.append(failed)
                binds.append(reasons)
                binds.append(time)
                try await execute(
                    """
                    UPDATE outbox o SET state = 'failed', reason = f.reason, updated_at = $3
                    FROM unnest($1::bigint[], $2::text[]) AS f(id, reason) WHERE o.id = f.id
                    """, binds, on: connection)
            }
        }
    }

    // MARK: Runs

    public func finishRun(_ runId: Int64, durationMilliseconds: Int64?) async throws {
        try requireWritable()
        try await inTransaction { connection in
            // The run's mark is read once (an uncorrelated subquery: one InitPlan), not once per
            // row as a column of a joined subquery was (2.4 s for a run of 100,000 messages).
            let counts = try await rows(
                """
                WITH mark AS MATERIALIZED (
                    SELECT \(Self.mark(key: "runs.key", destination: "runs.destination")) AS through_id
                    FROM runs WHERE runs.id = $1
                )
                SELECT count(*) FILTER (WHERE o.state = 'delivered' OR (o.state = 'pending' AND o.id <= m.through_id)),
                    count(*) FILTER (WHERE o.state = 'failed'),
                    count(*) FILTER (WHERE o.state = 'pending' AND o.id > m.through_id)
                FROM outbox o CROSS JOIN mark m WHERE o.run_id = $1
                """, [.integer(runId)], on: connection
            ) { try $0.decode((Int64, Int64, Int64).self) }.first ?? (Int64(0), Int64(0), Int64(0))
            let (sent, failed, pending) = counts
            let outcome = pending > 0 ? "failed" : failed > 0 ? "partial" : "ok"
            try await execute(
                """
                UPDATE runs SET sent = $2, failed = $3, outcome = $4, duration_ms = coalesce($5, duration_ms) WHERE id = $1
                """,
                [
                    .integer(runId), .integer(sent), .integer(failed), .text(outcome),
                    durationMilliseconds.map { SQLValue.integer($0) } ?? .null,
                ], on: connection)
            if pending == 0 {
                try await execute(
                    """
                    INSERT INTO pairs (key, destination, last_synced_at)
                    SELECT key, destination, started_at FROM runs WHERE id = $1
                    ON CONFLICT (key, destination) DO UPDATE
                    SET last_synced_at = greatest(pairs.last_synced_at, excluded.last_synced_at)
                    """, [.integer(runId)], on: connection)
            }
        }
    }

    public func unfinishedRuns(_ pair: PairName) async throws -> [Int64] {
        let values = bound(pair)
        return try await withConnection { connection in
            try await rows(
                "SELECT id FROM runs WHERE key = $1 AND destination = $2 AND outcome IN ('running', 'failed') ORDER BY id",
                values, on: connection
            ) { try $0.decode(Int64.self) }
        }
    }

    public func lastRun(_ pair: PairName) async throws -> RunSummary? {
        let values = bound(pair)
        return try await withConnection { connection in
            try await rows(
                "SELECT outcome, failed FROM runs WHERE key = $1 AND destination = $2 ORDER BY id DESC LIMIT 1", values,
                on: connection
            ) { row in
                let (outcome, failed) = try row.decode((String, Int64).self)
                return RunSummary(outcome: outcome, failed: Int(failed))
            }.first
        }
    }

    /// One statement (in a transaction, as every write of the sync state: `inTransaction`): the
    /// rows are found through `runs` and the outbox's run index; the newest outbox row stays (ids
    /// come from a sequence and would keep growing anyway).
    public func pruneDeliveredMessages(startedBefore cutoff: Int64) async throws {
        try requireWritable()
        try await inTransaction { connection in
            try await execute(
                """
                DELETE FROM outbox o USING runs r
                WHERE o.run_id = r.id AND r.started_at < $1 AND o.id < (SELECT max(id) FROM outbox) AND (
                    o.state = 'delivered'
                    OR (o.state = 'pending' AND o.id <= \(Self.mark(key: "r.key", destination: "r.destination")))
                )
                """, [.integer(cutoff)], on: connection)
        }
    }

    // MARK: Snapshots

    public func snapshotSizes() async throws -> [PairSize] {
        try await withConnection { connection in
            try await rows(
                "SELECT key, destination, count(*) FROM snapshots GROUP BY key, destination ORDER BY 1, 2", [],
                on: connection
            ) { row in
                let (key, destination, count) = try row.decode((String, String, Int64).self)
                return PairSize(pair: PairName(key: key, destination: destination), count: Int(count))
            }
        }
    }

    public func destinationsHoldingState(key: String) async throws -> [String] {
        try await withConnection { connection in
            try await rows(
                """
                SELECT destination FROM snapshots WHERE key = $1
                UNION SELECT o.destination FROM outbox o WHERE o.key = $1 AND o.state = 'pending'
                    AND o.id > \(Self.mark(key: "o.key", destination: "o.destination"))
                UNION SELECT destination FROM pairs WHERE key = $1
                ORDER BY 1
                """, [.text(key)], on: connection
            ) { try $0.decode(String.self) }
        }
    }

    public func lastMessage(key: String) async throws -> String? {
        try await withConnection { connection in
            try await rows("SELECT message FROM outbox WHERE key = $1 ORDER BY id DESC LIMIT 1", [.text(key)], on: connection) {
                try $0.decode(String.self)
            }.first
        }
    }

    public func snapshotHoldsValuesOtherThanTrue(key: String) async throws -> Bool {
        try await withConnection { connection in
            try await rows("SELECT 1 FROM snapshots WHERE key = $1 AND value <> 'true' LIMIT 1", [.text(key)], on: connection) {
                _ in true
            }.first ?? false
        }
    }

    public func dropPairIfRetired(_ pair: PairName) async throws -> Bool {
        try requireWritable()
        let values = bound(pair)
        return try await inTransaction { connection in
            let left = try await count(
                """
                SELECT (SELECT count(*) FROM snapshots WHERE key = $1 AND destination = $2)
                     + (SELECT count(*) FROM outbox WHERE \(Self.pendingOfPair))
                """, values, on: connection)
            guard left == 0 else { return false }
            try await execute("DELETE FROM pairs WHERE key = $1 AND destination = $2", values, on: connection)
            return true
        }
    }
}

/// The last change of each user of a batch, for the snapshot: a later row of a user replaces an
/// earlier one.
struct SnapshotChanges {
    private var index: [String: Int] = [:]
    private var users: [String] = []
    private var values: [String] = []
    private var removes: [Bool] = []

    mutating func set(_ userId: String, value: String, removes removal: Bool) {
        if let position = index[userId] {
            values[position] = value
            removes[position] = removal
        } else {
            index[userId] = users.count
            users.append(userId)
            values.append(value)
            removes.append(removal)
        }
    }

    /// The users written with their values, and the users removed.
    var arrays: (written: [String], values: [String], removed: [String]) {
        var written: [String] = []
        var writtenValues: [String] = []
        var removed: [String] = []
        written.reserveCapacity(users.count)
        writtenValues.reserveCapacity(users.count)
        for position in users.indices {
            if removes[position] {
                removed.append(users[position])
            } else {
                written.append(users[position])
                writtenValues.append(values[position])
            }
        }
        return (written, writtenValues, removed)
    }
}
