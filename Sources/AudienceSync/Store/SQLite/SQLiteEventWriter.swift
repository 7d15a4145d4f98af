import CSQLite
import Logging

extension SQLiteStore {
    /// A writer on a connection of its own, with the write-ahead log checkpointed beside it by a
    /// `SQLiteCheckpointer` (when its connection opens) for as long as `body` runs.
    public func withEventWriter<T>(_ options: EventWriterOptions, _ body: (any EventWriter) async throws -> T)
        async throws -> T
    {
        guard access == .readWrite else {
            throw AudienceSyncError(.store, "the store is open for reading only; nothing can be written", file: path)
        }
        let checkpointer: SQLiteCheckpointer?
        do {
            checkpointer = try SQLiteCheckpointer(path: path, logger: logger)
        } catch {
            // Without it the writer's connection checkpoints as SQLite does by default: slower, not wrong.
            logger.warning(
                "cannot open a connection for checkpoints; the writer checkpoints itself",
                metadata: ["error": "\(error)"])
            checkpointer = nil
        }
        // The writer's connection and page cache are gone once `withWriter` returns: give the memory
        // its thread freed back to the system (see `Database.deinit`).
        defer { audience_sync_release_free_memory() }
        return try await withWriter(options, checkpointer: checkpointer, body)
    }

    private func withWriter<T>(
        _ options: EventWriterOptions, checkpointer: SQLiteCheckpointer?, _ body: (any EventWriter) async throws -> T
    ) async throws -> T {
        let (commits, committed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let writer = try await SQLiteEventWriter.open(
            path: path, options: options, cacheMebibytes: cacheMebibytes, checkpointer: checkpointer,
            committed: checkpointer == nil ? nil : committed, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            if let checkpointer {
                // Copies each commit into the database file while the writer goes on; commits made
                // during a checkpoint are coalesced into the next one.
                group.addTask {
                    for await _ in commits { await checkpointer.checkpoint() }
                }
            }
            let result: T
            do {
                result = try await body(writer)
            } catch {
                await writer.close()
                committed.finish()
                try await group.waitForAll()
                throw error
            }
            await writer.close()
            committed.finish()
            // The checkpoint of the last commit is done before the writer is gone.
            try await group.waitForAll()
            return result
        }
    }
}

/// Stores staged batches (SPEC §3.1) with prepared multi-row statements in large transactions, on a
/// connection and thread of its own.
///
/// Deduplication is SQLite's: `INSERT OR IGNORE` on the unique message id, and when a statement
/// stored fewer rows than it was given, their consecutive rowids tell which. Users and identity
/// links are kept as earliest-time upserts (`EarliestIdentities`), written at each commit.
actor SQLiteEventWriter: EventWriter {
    private let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    // The statements come before their connection: they are finalized first, so that the
    // connection really closes (and frees its cache) when the writer goes.
    private let insertEvent: Statement
    /// Multi-row INSERTs of 2, 4, 8, 16 and 32 rows (`insertChunks[k]` has 2 << k rows).
    private let insertChunks: [Statement]
    private let readInsertedIds: Statement
    private let upsertUser: Statement
    private let upsertLink: Statement
    private let countEvents: Statement
    private let database: Database
    private let path: String
    private let options: EventWriterOptions
    private let logger: Logger
    private var inTransaction = false
    private var pendingInTransaction = 0
    /// The earliest time of each numbered user and link: known to be stored, or to write at commit.
    private var identities = EarliestIdentities()
    /// Messages stored in the open transaction per source and day of arrival, for `event_counts`.
    private var arrivals: [DayOfSource: Int] = [:]

    /// Copies the WAL into the database file on another thread (nil: SQLite's own checkpoints).
    private let checkpointer: SQLiteCheckpointer?
    /// Told after each commit, for the checkpointer.
    private let committed: AsyncStream<Void>.Continuation?
    /// The connection's automatic checkpoint setting, restored when the writer closes.
    private var automaticCheckpointPages = 1000
    private let pageSize: Int
    private let walLimitBytes: Int
    private var closed = false
    /// The WAL's size in frames at the last commit, and the frames committed since the
    /// checkpointer was last told.
    private var walFrames = 0
    private var framesNotCheckpointed = 0

    /// WAL size past which the writer waits for a checkpoint before its next transaction.
    static let defaultWALLimitBytes = 512 << 20

    /// Rows per multi-row INSERT: each statement run opens cursors on the table and every index,
    /// so inserting rows in groups divides that cost. Fewer rows go in the largest power of two
    /// that fits (a /v1/batch request of 100 messages: 32, 32, 32, 4), not one by one.
    static let rowsPerInsert = 32

    /// Opens the writer's connection on its own thread.
    static func open(
        path: String, options: EventWriterOptions, cacheMebibytes: Int, checkpointer: SQLiteCheckpointer?,
        committed: AsyncStream<Void>.Continuation?, logger: Logger
    ) async throws -> SQLiteEventWriter {
        do {
            return try SQLiteEventWriter(
                path: path, options: options, cacheMebibytes: cacheMebibytes, checkpointer: checkpointer,
                committed: committed, logger: logger)
        } catch {
            throw SQLiteStore.storeError(error, path: path)
        }
    }

    private init(
        path: String, options: EventWriterOptions, cacheMebibytes: Int, checkpointer: SQLiteCheckpointer?,
        committed: AsyncStream<Void>.Continuation?, logger: Logger
    ) throws {
        executor = ThreadExecutor()
        self.path = path
        self.options = options
        self.logger = logger
        self.checkpointer = checkpointer
        self.committed = committed
        walLimitBytes = options.walLimitBytes ?? Self.defaultWALLimitBytes
        let database = try Database(path: path, mode: .readWrite)
        try database.execute("PRAGMA cache_size = -\(cacheMebibytes * 1024)")
        self.database = database
        // `OR IGNORE`, not `ON CONFLICT (message_id) DO NOTHING`: the only constraint a bound row can
        // break is the message id's uniqueness, where both skip the row. But with an upsert clause the
        // NOT NULL checks keep their default ABORT, so SQLite must be able to undo a half-done
        // multi-row statement and copies every page the statement first touches into a statement
        // journal (a temporary file): 2.2 GB written for 200,000 events. `OR IGNORE` cannot abort.
        // Every row's received_at and source are parameters ?1 and ?2, bound once per batch; row r's
        // other seven columns are parameters 7r + 3 … 7r + 9.
        func row(_ row: Int) -> String {
            let first = 7 * row + 3
            return "(?\(first), ?\(first + 1), ?\(first + 2), ?\(first + 3), ?\(first + 4), ?\(first + 5), ?1, ?\(first + 6), ?2)"
        }
        let columns = "message_id, type, user_id, anonymous_id, event, ts, received_at, message, source"
        insertEvent = try database.prepare(
            "INSERT OR IGNORE INTO events (\(columns)) VALUES \(row(0))", persistent: true)
        insertChunks = try sequence(first: 2, next: { $0 < Self.rowsPerInsert ? $0 * 2 : nil }).map { size in
            let rows = (0..<size).map(row).joined(separator: ", ")
            return try database.prepare("INSERT OR IGNORE INTO events (\(columns)) VALUES \(rows)", persistent: true)
        }
        countEvents = try database.prepare(
            """
            INSERT INTO event_counts (source, day, count) VALUES (?1, ?2, ?3)
            ON CONFLICT (source, day) DO UPDATE SET count = count + excluded.count
            """, persistent: true)
        readInsertedIds = try database.prepare("SELECT message_id FROM events WHERE seq > ?", persistent: true)
        upsertUser = try database.prepare(
            """
            INSERT INTO users (user_id, first_seen) VALUES (?1, ?2)
            ON CONFLICT (user_id) DO UPDATE SET first_seen = excluded.first_seen
            WHERE excluded.first_seen < users.first_seen
            """, persistent: true)
        upsertLink = try database.prepare(
            """
            INSERT INTO identity_links (anonymous_id, user_id, ts, message_id) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (anonymous_id, user_id) DO UPDATE SET ts = excluded.ts, message_id = excluded.message_id
            WHERE (excluded.ts, excluded.message_id) < (identity_links.ts, identity_links.message_id)
            """, persistent: true)
        pageSize = Int(try database.prepare("PRAGMA page_size").scalar()?.int64 ?? 4096)
        if checkpointer != nil {
            automaticCheckpointPages = Int(try database.prepare("PRAGMA wal_autocheckpoint").scalar()?.int64 ?? 1000)
            database.recordWALSizeInsteadOfCheckpointing()
        }
    }

    // MARK: EventWriter

    func write(_ batch: StagedBatch) async throws -> EventWriteCounts {
        do {
            if batch.renumbered {
                try writePendingIdentities()
                identities.removeAll()
            }
            identities.add(batch)
            return try await store(batch)
        } catch {
            throw SQLiteStore.storeError(error, path: path)
        }
    }

    func commit() async throws {
        do {
            try commitOpenTransaction()
        } catch {
            throw SQLiteStore.storeError(error, path: path)
        }
    }

    /// On the writer's thread from the first batch to the commit (the protocol's default would
    /// hop here and back for each batch).
    func writeAndCommit(_ batches: [StagedBatch]) async throws -> [EventWriteCounts] {
        var counts: [EventWriteCounts] = []
        counts.reserveCapacity(batches.count)
        for batch in batches { counts.append(try await write(batch)) }
        try await commit()
        return counts
    }

    func rollback() {
        rollbackOpenTransaction()
    }

    /// Rolls back what is not committed and gives the connection back its automatic checkpoints.
    func close() {
        guard !closed else { return }
        closed = true
        rollbackOpenTransaction()
        guard checkpointer != nil else { return }
        // The last commits are checkpointed before the writer is gone.
        requestCheckpoint(force: true)
        do {
            try database.execute("PRAGMA wal_autocheckpoint = \(automaticCheckpointPages)")
        } catch {
            logger.warning("cannot restore automatic checkpoints", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Storing

    private func store(_ batch: StagedBatch) async throws -> EventWriteCounts {
        var counts = EventWriteCounts()
        let messages = batch.messages
        guard !messages.isEmpty else { return counts }
        var index = 0
        while index < messages.count {
            let room = options.transactionSize.map { max(1, $0 - pendingInTransaction) } ?? Int.max
            let fit = min(Self.rowsPerInsert, messages.count - index, room)
            // The largest power of two not over `fit`: a statement of that many rows is prepared.
            let count = 1 << (Int.bitWidth - 1 - fit.leadingZeroBitCount)
            if !inTransaction { try await begin() }
            let acceptedBefore = counts.accepted
            try insert(messages[index..<(index + count)], of: batch, counts: &counts)
            // Counted in the transaction that stores them.
            arrivals[DayOfSource(batch), default: 0] += counts.accepted - acceptedBefore
            index += count
            if let size = options.transactionSize, pendingInTransaction >= size {
                try commitOpenTransaction()
            }
        }
        return counts
    }

    private func begin() async throws {
        // Past the limit, the WAL starts over only if everything in it was copied before this
        // transaction starts: wait for a checkpoint that follows the last commit.
        if let checkpointer, database.walFramesAtLastCommit * pageSize > walLimitBytes {
            await checkpointer.checkpoint()
        }
        try database.execute("BEGIN IMMEDIATE TRANSACTION")
        inTransaction = true
    }

    /// Inserts `chunk` (one row, or a power of two up to `rowsPerInsert` in one multi-row
    /// statement), binding its texts straight from the batch's arena, and counts which rows were new.
    private func insert(
        _ chunk: ArraySlice<StagedBatch.Message>, of batch: StagedBatch, counts: inout EventWriteCounts
    ) throws {
        try batch.arena.withUnsafeBytes { arena in
            let statement =
                chunk.count == 1 ? insertEvent : insertChunks[Int.bitWidth - 2 - chunk.count.leadingZeroBitCount]
            defer { statement.clearBindings() }
            var inserted = 0
            if chunk.count > 1 {
                statement.reset()
                try bindShared(batch, to: statement)
                for (row, message) in chunk.enumerated() { try bind(message, row: row, to: statement, arena: arena) }
                try statement.step()
                inserted = database.changes
            } else {
                for message in chunk {
                    statement.reset()
                    try bindShared(batch, to: statement)
                    try bind(message, row: 0, to: statement, arena: arena)
                    try statement.step()
                    if database.changes == 1 {
                        identities.noteStored(message, arena: arena, counts: &counts)
                    } else {
                        counts.duplicates += 1
                    }
                }
                pendingInTransaction += chunk.count
                return
            }
            pendingInTransaction += chunk.count
            if inserted == chunk.count {
                for message in chunk { identities.noteStored(message, arena: arena, counts: &counts) }
                return
            }
            // Some were duplicates. The rows this statement inserted have consecutive rowids ending
            // at the last insert rowid: read their ids to know which messages they were.
            var storedIds = Set<String>()
            if inserted > 0 {
                try readInsertedIds.forEachRow([.integer(database.lastInsertRowID - Int64(inserted))]) { row in
                    if let id = row.text(0) { storedIds.insert(id) }
                }
            }
            for message in chunk {
                let id = String(decoding: UnsafeRawBufferPointer(rebasing: arena[message.messageId]), as: UTF8.self)
                // Within one statement a repeated id is inserted once: count later copies as duplicates.
                if storedIds.remove(id) != nil {
                    identities.noteStored(message, arena: arena, counts: &counts)
                } else {
                    counts.duplicates += 1
                }
            }
        }
    }

    /// Binds what every row of the batch shares: received_at (?1) and source (?2).
    private func bindShared(_ batch: StagedBatch, to statement: Statement) throws {
        try statement.bindInt64(batch.receivedAt, at: 1)
        if let source = batch.source {
            try statement.bind(.text(source), at: 2)
        } else {
            try statement.bindNull(at: 2)
        }
    }

    /// Binds `message` as row `row` (0-based) of `statement`, without copying its bytes (the shared
    /// columns are bound once for all rows).
    private func bind(_ message: StagedBatch.Message, row: Int, to statement: Statement, arena: UnsafeRawBufferPointer)
        throws
    {
        let base = row * 7 + 1
        func bind(_ range: Range<Int>?, at index: Int) throws {
            if let range {
                try statement.bindTextNoCopy(UnsafeRawBufferPointer(rebasing: arena[range]), at: base + index)
            } else {
                try statement.bindNull(at: base + index)
            }
        }
        try bind(message.messageId, at: 2)
        try statement.bindTextNoCopy(message.type.utf8Name, at: base + 3)
        try bind(message.userId, at: 4)
        try bind(message.anonymousId, at: 5)
        try bind(message.eventName, at: 6)
        try statement.bindInt64(message.time, at: base + 7)
        try bind(message.body, at: 8)
    }

    /// Writes the users and links whose earliest time the open transaction lowered (no commit).
    private func writePendingIdentities() throws {
        do {
            for user in identities.pendingUsers {
                try upsertUser.execute([.text(identities.userIds[Int(user)]), .integer(identities.userTime(user))])
            }
            for number in identities.pendingLinks {
                let link = identities.link(number)
                try upsertLink.execute([
                    .text(link.anonymousId), .text(link.userId), .integer(link.time), .text(link.messageId),
                ])
            }
            for (arrival, count) in arrivals {
                try countEvents.execute([.text(arrival.source), .integer(arrival.day), .integer(Int64(count))])
            }
            arrivals = [:]
        } catch {
            rollbackOpenTransaction()
            throw error
        }
        identities.clearPending()
    }

    /// Writes the users and links gathered in the open transaction, then commits it.
    private func commitOpenTransaction() throws {
        guard inTransaction else { return }
        try writePendingIdentities()
        do {
            try database.execute("COMMIT TRANSACTION")
        } catch {
            rollbackOpenTransaction()
            throw error
        }
        inTransaction = false
        pendingInTransaction = 0
        requestCheckpoint()
    }

    /// Tells the checkpointer once the commits since it was last told wrote as many WAL frames as
    /// SQLite's own automatic checkpoint waits for (`wal_autocheckpoint`, 1,000 pages by default).
    /// An ingest's commits each write far more; the server's small group commits rewrite the same
    /// few pages (the table's last leaf, the indexes', the users'), and a checkpoint after each
    /// copied those pages and synced the database file every time: 9% of the server's CPU.
    private func requestCheckpoint(force: Bool = false) {
        guard let committed else { return }
        let frames = database.walFramesAtLastCommit
        // A WAL smaller than at the last commit started over: all its frames are new.
        framesNotCheckpointed += frames >= walFrames ? frames - walFrames : frames
        walFrames = frames
        guard framesNotCheckpointed >= automaticCheckpointPages || (force && framesNotCheckpointed > 0) else { return }
        framesNotCheckpointed = 0
        committed.yield()
    }

    /// Rolls back the open transaction: nothing pending was stored, and the identity bounds cannot
    /// tell pending from known, so every time is forgotten (the numbers stay valid).
    private func rollbackOpenTransaction() {
        if inTransaction || database.isInTransaction {
            do {
                try database.execute("ROLLBACK TRANSACTION")
            } catch {
                logger.warning("rollback failed", metadata: ["store": "\(path)", "error": "\(error)"])
            }
        }
        inTransaction = false
        pendingInTransaction = 0
        arrivals = [:]
        identities.forgetTimes()
    }
}

/// Copies an ingest's committed WAL frames into the database file on a thread and connection of
/// its own.
///
/// SQLite checkpoints automatically in the connection that commits, right after the commit: at 2M
/// events that was 1.3 s of CPU, plus waiting for the database file's fsyncs, on the thread that
/// stores events — the ingest's bottleneck — while the other core had time to spare. So while a
/// writer is open, its connection does not checkpoint; once its commits have written as many WAL
/// frames as SQLite's automatic checkpoint waits for (after each of an ingest's large commits),
/// this actor runs a passive checkpoint, which never blocks the writer or any reader.
///
/// The WAL starts over from its beginning only when everything in it was copied before the next
/// write transaction starts, which a checkpoint running beside that transaction never achieves. So
/// once the WAL has grown past the writer's limit, the writer awaits a checkpoint before it begins
/// its next transaction, and the WAL stays bounded. The writer knows the WAL's size at each commit
/// (SQLite's WAL hook reports it), so whether it waits depends on what it wrote, never on timing.
actor SQLiteCheckpointer {
    private let executor = ThreadExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let database: Database
    private let logger: Logger

    init(path: String, logger: Logger) throws {
        database = try Database(path: path, mode: .readWrite)
        self.logger = logger
    }

    /// Copies what it can of the WAL: a checkpoint that cannot copy everything (a reader still needs
    /// old frames) copies the rest next time. A failure is logged: the writer is not affected.
    func checkpoint() {
        do {
            try database.checkpointPassively()
        } catch {
            logger.warning("checkpoint failed; the next one retries", metadata: ["error": "\(error)"])
        }
    }
}
