import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// A writer on a connection of the pool, held for as long as `body` runs.
    public func withEventWriter<T>(_ options: EventWriterOptions, _ body: (any EventWriter) async throws -> T)
        async throws -> T
    {
        guard access == .readWrite else {
            throw AudienceSyncError(.store, "\(location): the store is open for reading only; nothing can be written")
        }
        do {
            return try await client.withConnection { connection in
                let writer = PostgresEventWriter(
                    connection: connection, target: target, options: options, logger: logger)
                do {
                    try await writer.prepare()
                    let result = try await body(writer)
                    await writer.rollback()
                    return result
                } catch {
                    await writer.rollback()
                    throw error
                }
            }
        } catch {
            throw Self.storeError(error, target: target)
        }
    }
}

/// Stores staged batches with `COPY … FROM STDIN` in large transactions (SPEC §12).
///
/// Messages are usually new, so each chunk of a batch is copied straight into `events`: the writer
/// keeps the first copy of each messageId in the chunk (later copies are duplicates, as on SQLite),
/// asks which of those ids are stored already (one `= ANY($1)` over the unique index), and copies
/// the others inside a savepoint. A concurrent writer (`serve` beside an ingest) may store one of
/// them between the question and the copy: the copy then fails with a unique violation, the
/// savepoint is rolled back, and that chunk takes the staging path — copied into a temporary
/// staging table (one per connection, emptied after each chunk), then moved into `events` by one
/// `INSERT … SELECT … ON CONFLICT (message_id) DO NOTHING` in batch order, which waits for a
/// concurrent insert of the same id and skips it. The staging statement returns only its count when
/// every message was new, else the ids it stored, to tell the duplicates.
///
/// The check costs about as much server time as the copy's own index lookups, so once a check
/// found none of its ids stored, the next chunks are copied without one; the first stored id then
/// fails a copy (PostgreSQL logs the unique violation), that chunk is staged, and the writer checks
/// again until a check finds nothing. Re-ingesting a file checks every chunk and never fails a copy.
///
/// A savepoint whose copy stored rows is a subtransaction with an id of its own, and PostgreSQL keeps
/// only 64 of them per transaction where other sessions look (`PGPROC_MAX_CACHED_SUBXIDS`); past
/// that, every other session's snapshot has to read `pg_subtrans`. So a transaction copies at most
/// `directCopiesPerTransaction` chunks directly and stages the rest: the default transaction of
/// 100,000 messages in batches of 2,048 has at most 50 chunks; `ingest --strict` (one transaction)
/// and a large `serve` group stage what comes after.
///
/// Users, identity links and arrival counts are kept as earliest-time upserts
/// (`EarliestIdentities`) and written at each commit, each kind in one statement over arrays.
actor PostgresEventWriter: EventWriter {
    private let connection: PostgresConnection
    private let target: PostgresLocation
    private let options: EventWriterOptions
    private let logger: Logger
    private var inTransaction = false
    private var pendingInTransaction = 0
    /// Chunks copied straight into `events` in the open transaction (each in a savepoint).
    private var directCopies = 0
    /// Whether the next direct copy asks first which of its ids are stored: not after a check found
    /// none (messages are mostly new), again after a copy failed on a stored id.
    private var checkBeforeCopy = true
    private var identities = EarliestIdentities()
    private var arrivals: [DayOfSource: Int] = [:]
    /// How many chunks took each path (for tests).
    private(set) var chunksCopiedDirectly = 0
    private(set) var chunksStaged = 0
    /// Tests: runs after a chunk's ids were checked and before its copy into `events`, to store one
    /// of them from another connection at exactly that moment.
    private var beforeDirectCopy: (@Sendable () async throws -> Void)?

    static let stagingTable = "audience_sync_staging"
    /// The columns of `events` that a copy fills, in `copyData`'s order.
    static let eventColumns = [
        "message_id", "type", "user_id", "anonymous_id", "event", "ts", "received_at", "source", "message",
    ]
    /// Messages per chunk: large enough that the statements' round trips are noise, small enough
    /// that the data of one COPY is a few megabytes.
    static let rowsPerCopy = 5_000
    /// Rows per write of a COPY's data: the server parses one piece while the next is encoded.
    static let rowsPerPiece = 256
    /// Direct copies (savepoints) per transaction, under PostgreSQL's 64 cached subtransactions.
    static let directCopiesPerTransaction = 56
    /// The SQLSTATE of a unique violation.
    static let uniqueViolation = "23505"

    init(connection: PostgresConnection, target: PostgresLocation, options: EventWriterOptions, logger: Logger) {
        self.connection = connection
        self.target = target
        self.options = options
        self.logger = logger
    }

    /// Creates the connection's staging table (a temporary table lives as long as its connection).
    func prepare() async throws {
        try await connection.query(
            """
            CREATE TEMPORARY TABLE IF NOT EXISTS audience_sync_staging (
                ord integer NOT NULL,
                message_id text COLLATE "C" NOT NULL,
                type text COLLATE "C" NOT NULL,
                user_id text COLLATE "C",
                anonymous_id text COLLATE "C",
                event text COLLATE "C",
                ts bigint NOT NULL,
                received_at bigint NOT NULL,
                source text COLLATE "C",
                message jsonb NOT NULL
            )
            """, logger: logger)
        try await connection.query("TRUNCATE audience_sync_staging", logger: logger)
    }

    /// Tests: sets the hook run between the check of a chunk's ids and its direct copy.
    func setBeforeDirectCopy(_ hook: (@Sendable () async throws -> Void)?) {
        beforeDirectCopy = hook
    }

    // MARK: EventWriter

    func write(_ batch: StagedBatch) async throws -> EventWriteCounts {
        do {
            if batch.renumbered {
                try await writePendingIdentities()
                identities.removeAll()
            }
            identities.add(batch)
            return try await store(batch)
        } catch {
            await rollback()
            throw PostgresStore.storeError(error, target: target)
        }
    }

    func commit() async throws {
        guard inTransaction else { return }
        do {
            try await writePendingIdentities()
            try await connection.query("COMMIT", logger: logger)
            inTransaction = false
            pendingInTransaction = 0
            directCopies = 0
        } catch {
            await rollback()
            throw PostgresStore.storeError(error, target: target)
        }
    }

    /// Rolls back the open transaction: nothing pending was stored, and the identity bounds cannot
    /// tell pending from known, so every time is forgotten (the numbers stay valid).
    func rollback() async {
        if inTransaction {
            do {
                try await connection.query("ROLLBACK", logger: logger)
            } catch {
                logger.warning("rollback failed", metadata: ["store": "\(target)", "error": "\(error)"])
            }
        }
        inTransaction = false
        pendingInTransaction = 0
        directCopies = 0
        arrivals = [:]
        identities.forgetTimes()
    }

    // MARK: Storing

    private func store(_ batch: StagedBatch) async throws -> EventWriteCounts {
        var counts = EventWriteCounts()
        var index = 0
        while index < batch.messages.count {
            let room = options.transactionSize.map { max(1, $0 - pendingInTransaction) } ?? Int.max
            let count = min(Self.rowsPerCopy, batch.messages.count - index, room)
            if !inTransaction {
                try await connection.query("BEGIN", logger: logger)
                inTransaction = true
            }
            let acceptedBefore = counts.accepted
            let chunk = index..<(index + count)
            if directCopies >= Self.directCopiesPerTransaction {
                try await insertThroughStaging(chunk, of: batch, counts: &counts)
            } else if try await !insertDirectly(chunk, of: batch, counts: &counts) {
                try await insertThroughStaging(chunk, of: batch, counts: &counts)
            }
            arrivals[DayOfSource(batch), default: 0] += counts.accepted - acceptedBefore
            pendingInTransaction += count
            index += count
            if let size = options.transactionSize, pendingInTransaction >= size {
                try await commit()
            }
        }
        return counts
    }

    /// Copies the messages of `chunk` (indices of `batch.messages`) whose messageId is new straight
    /// into `events`, and counts them; false, with nothing stored or counted, when one of them was
    /// stored: by a concurrent writer after the check, or before a copy that was not checked.
    private func insertDirectly(
        _ chunk: Range<Int>, of batch: StagedBatch, counts: inout EventWriteCounts
    ) async throws -> Bool {
        // The first copy of each messageId in the chunk.
        var firsts: [Int] = []
        var ids: [String] = []
        firsts.reserveCapacity(chunk.count)
        ids.reserveCapacity(chunk.count)
        var seen = Set<String>(minimumCapacity: chunk.count)
        batch.arena.withUnsafeBytes { arena in
            for index in chunk {
                let id = String(
                    decoding: UnsafeRawBufferPointer(rebasing: arena[batch.messages[index].messageId]), as: UTF8.self)
                if seen.insert(id).inserted {
                    firsts.append(index)
                    ids.append(id)
                }
            }
        }
        var new = firsts
        if checkBeforeCopy {
            // Those stored already (by this transaction or a committed one).
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(ids)
            var stored = Set<String>()
            let check = PostgresQuery(
                unsafeSQL: "SELECT message_id FROM events WHERE message_id = ANY($1::text[])", binds: bindings)
            for try await row in try await connection.query(check, logger: logger) {
                stored.insert(try row.decode(String.self))
            }
            if stored.isEmpty {
                checkBeforeCopy = false
            } else {
                new = zip(firsts, ids).compactMap { stored.contains($0.1) ? nil : $0.0 }
            }
        }
        if !new.isEmpty {
            if let beforeDirectCopy { try await beforeDirectCopy() }
            try await connection.query("SAVEPOINT direct_copy", logger: logger)
            directCopies += 1
            do {
                try await copy(new, of: batch, into: "events", columns: Self.eventColumns, ordinals: false)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == Self.uniqueViolation {
                // Stored already (unchecked) or meanwhile by another writer: the staging path waits
                // for a concurrent insert and skips what is stored; the next chunks are checked.
                try await connection.query("ROLLBACK TO SAVEPOINT direct_copy", logger: logger)
                try await connection.query("RELEASE SAVEPOINT direct_copy", logger: logger)
                checkBeforeCopy = true
                return false
            }
            try await connection.query("RELEASE SAVEPOINT direct_copy", logger: logger)
        }
        chunksCopiedDirectly += 1
        batch.arena.withUnsafeBytes { arena in
            var copied = new.makeIterator()
            var nextCopied = copied.next()
            for index in chunk {
                if index == nextCopied {
                    identities.noteStored(batch.messages[index], arena: arena, counts: &counts)
                    nextCopied = copied.next()
                } else {
                    counts.duplicates += 1
                }
            }
        }
        return true
    }

    /// Copies `chunk` into the staging table, moves the new messages into `events`, and counts
    /// which were new.
    private func insertThroughStaging(
        _ chunk: Range<Int>, of batch: StagedBatch, counts: inout EventWriteCounts
    ) async throws {
        try await copy(
            Array(chunk), of: batch, into: Self.stagingTable, columns: ["ord"] + Self.eventColumns, ordinals: true)
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(Int64(chunk.count))
        let moved = PostgresQuery(
            unsafeSQL: """
                WITH inserted AS (
                    INSERT INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, source, message)
                    SELECT message_id, type, user_id, anonymous_id, event, ts, received_at, source, message
                    FROM audience_sync_staging ORDER BY ord
                    ON CONFLICT (message_id) DO NOTHING
                    RETURNING message_id
                ), total AS (SELECT count(*) AS n FROM inserted)
                SELECT NULL::text AS message_id WHERE (SELECT n FROM total) = $1
                UNION ALL
                SELECT message_id FROM inserted WHERE (SELECT n FROM total) <> $1
                """, binds: bindings)
        var all = false
        var storedIds = Set<String>()
        for try await row in try await connection.query(moved, logger: logger) {
            if let id = try row.decode(String?.self) {
                storedIds.insert(id)
            } else {
                all = true
            }
        }
        try await connection.query("TRUNCATE audience_sync_staging", logger: logger)
        chunksStaged += 1
        batch.arena.withUnsafeBytes { arena in
            for message in batch.messages[chunk] {
                if all {
                    identities.noteStored(message, arena: arena, counts: &counts)
                    continue
                }
                let id = String(decoding: UnsafeRawBufferPointer(rebasing: arena[message.messageId]), as: UTF8.self)
                // A repeated id is stored once: later copies are duplicates.
                if storedIds.remove(id) != nil {
                    identities.noteStored(message, arena: arena, counts: &counts)
                } else {
                    counts.duplicates += 1
                }
            }
        }
    }

    /// Copies the messages at `rows` (indices of `batch.messages`, in order) into `table`, a piece
    /// at a time, so that the server parses one piece while the next is encoded; `ordinals` puts
    /// each row's position first (the staging table's `ord`).
    private func copy(
        _ rows: [Int], of batch: StagedBatch, into table: String, columns: [String], ordinals: Bool
    ) async throws {
        try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
            var start = 0
            while start < rows.count {
                let end = min(start + Self.rowsPerPiece, rows.count)
                let data = batch.arena.withUnsafeBytes { arena in
                    Self.copyData(rows[start..<end], of: batch, arena: arena, firstOrdinal: ordinals ? start : nil)
                }
                try await writer.write(data)
                start = end
            }
        }
    }

    /// Writes the users, links and arrival counts the open transaction changed (no commit).
    private func writePendingIdentities() async throws {
        if !identities.pendingUsers.isEmpty {
            var ids: [String] = []
            var times: [Int64] = []
            for user in identities.pendingUsers {
                ids.append(identities.userIds[Int(user)])
                times.append(identities.userTime(user))
            }
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(ids)
            bindings.append(times)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO users (user_id, first_seen) SELECT * FROM unnest($1::text[], $2::bigint[])
                        ON CONFLICT (user_id) DO UPDATE SET first_seen = excluded.first_seen
                        WHERE excluded.first_seen < users.first_seen
                        """, binds: bindings), logger: logger)
        }
        if !identities.pendingLinks.isEmpty {
            var anonymousIds: [String] = []
            var userIds: [String] = []
            var times: [Int64] = []
            var messageIds: [String] = []
            for number in identities.pendingLinks {
                let link = identities.link(number)
                anonymousIds.append(link.anonymousId)
                userIds.append(link.userId)
                times.append(link.time)
                messageIds.append(link.messageId)
            }
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(anonymousIds)
            bindings.append(userIds)
            bindings.append(times)
            bindings.append(messageIds)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO identity_links (anonymous_id, user_id, ts, message_id)
                        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
                        ON CONFLICT (anonymous_id, user_id) DO UPDATE SET ts = excluded.ts, message_id = excluded.message_id
                        WHERE (excluded.ts, excluded.message_id) < (identity_links.ts, identity_links.message_id)
                        """, binds: bindings), logger: logger)
        }
        if !arrivals.isEmpty {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(arrivals.keys.map(\.source))
            bindings.append(arrivals.keys.map(\.day))
            bindings.append(arrivals.keys.map { Int64(arrivals[$0] ?? 0) })
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO event_counts (source, day, count)
                        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                        ON CONFLICT (source, day) DO UPDATE SET count = event_counts.count + excluded.count
                        """, binds: bindings), logger: logger)
            arrivals = [:]
        }
        identities.clearPending()
    }

    // MARK: COPY's text format

    /// The messages at `rows` (indices of `batch.messages`) as rows of `eventColumns` in COPY's text
    /// format: tab-separated columns, `\N` for NULL, backslash, tab, newline and carriage return
    /// escaped; with `firstOrdinal`, each row starts with its ordinal, counted from there.
    static func copyData(
        _ rows: ArraySlice<Int>, of batch: StagedBatch, arena: UnsafeRawBufferPointer, firstOrdinal: Int?
    ) -> ByteBuffer {
        var size = 0
        for index in rows { size += batch.messages[index].body.count + 160 }
        var buffer = ByteBufferAllocator().buffer(capacity: size + size / 16)
        // The received time and source, the same on every row, escaped once.
        var arrival = ByteBufferAllocator().buffer(capacity: 64)
        arrival.writeString(String(batch.receivedAt))
        arrival.writeInteger(UInt8(ascii: "\t"))
        if var source = batch.source {
            source.withUTF8 { appendText(UnsafeRawBufferPointer($0), to: &arrival) }
        } else {
            arrival.writeStaticString("\\N")
        }
        for (offset, index) in rows.enumerated() {
            let message = batch.messages[index]
            if let firstOrdinal {
                buffer.writeString(String(firstOrdinal + offset))
                buffer.writeInteger(UInt8(ascii: "\t"))
            }
            appendText(arena, message.messageId, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            buffer.writeString(message.type.rawValue)
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendText(arena, message.userId, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendText(arena, message.anonymousId, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendText(arena, message.eventName, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\t"))
            buffer.writeString(String(message.time))
            buffer.writeInteger(UInt8(ascii: "\t"))
            buffer.writeImmutableBuffer(arrival)
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendText(arena, message.body, to: &buffer)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }

    /// The bytes at `range` of `arena` as one escaped column (`\N` when nil).
    static func appendText(_ arena: UnsafeRawBufferPointer, _ range: Range<Int>?, to buffer: inout ByteBuffer) {
        guard let range else {
            buffer.writeStaticString("\\N")
            return
        }
        appendText(UnsafeRawBufferPointer(rebasing: arena[range]), to: &buffer)
    }

    /// `bytes` as one column of COPY's text format: backslash, tab, newline and carriage return
    /// escaped (the sync state's outbox rows are written with it too).
    static func appendText(_ bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        guard bytes.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else {
            buffer.writeBytes(bytes)
            return
        }
        for byte in bytes {
            switch byte {
            case 0x5C: buffer.writeStaticString("\\\\")
            case 0x09: buffer.writeStaticString("\\t")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            default: buffer.writeInteger(byte)
            }
        }
    }
}
