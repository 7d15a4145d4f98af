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
                let writer = PostgresEventWriter(connection: connection, target: target, options: options, logger: logger)
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
/// Each batch is copied into a temporary staging table (one per connection, emptied after each
/// batch), then moved into `events` by one `INSERT … SELECT … ON CONFLICT (message_id) DO NOTHING`
/// in batch order, so the first of several copies of a messageId is the one stored, as on SQLite.
/// The statement returns only its count when every message was new, else the ids it stored, to
/// tell the duplicates. Users, identity links and arrival counts are kept as earliest-time upserts
/// (`EarliestIdentities`) and written at each commit, each kind in one statement over arrays.
actor PostgresEventWriter: EventWriter {
    private let connection: PostgresConnection
    private let target: PostgresLocation
    private let options: EventWriterOptions
    private let logger: Logger
    private var inTransaction = false
    private var pendingInTransaction = 0
    private var identities = EarliestIdentities()
    private var arrivals: [DayOfSource: Int] = [:]

    static let stagingTable = "audience_sync_staging"
    static let stagingColumns = ["ord", "message_id", "type", "user_id", "anonymous_id", "event", "ts", "message"]
    /// Messages per COPY: large enough that the statements' round trips are noise, small enough
    /// that the data of one COPY is a few megabytes.
    static let rowsPerCopy = 5_000

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
                message jsonb NOT NULL
            )
            """, logger: logger)
        try await connection.query("TRUNCATE audience_sync_staging", logger: logger)
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
            try await insert(batch.messages[index..<(index + count)], of: batch, counts: &counts)
            arrivals[DayOfSource(batch), default: 0] += counts.accepted - acceptedBefore
            pendingInTransaction += count
            index += count
            if let size = options.transactionSize, pendingInTransaction >= size {
                try await commit()
            }
        }
        return counts
    }

    /// Copies `chunk` into the staging table, moves the new messages into `events`, and counts
    /// which were new.
    private func insert(
        _ chunk: ArraySlice<StagedBatch.Message>, of batch: StagedBatch, counts: inout EventWriteCounts
    ) async throws {
        let data = batch.arena.withUnsafeBytes { arena in Self.copyData(chunk, arena: arena) }
        try await connection.copyFrom(table: Self.stagingTable, columns: Self.stagingColumns, logger: logger) { writer in
            try await writer.write(data)
        }
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(batch.receivedAt)
        bindings.append(batch.source)
        bindings.append(Int64(chunk.count))
        let moved = PostgresQuery(
            unsafeSQL: """
                WITH inserted AS (
                    INSERT INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, source, message)
                    SELECT message_id, type, user_id, anonymous_id, event, ts, $1, $2, message
                    FROM audience_sync_staging ORDER BY ord
                    ON CONFLICT (message_id) DO NOTHING
                    RETURNING message_id
                ), total AS (SELECT count(*) AS n FROM inserted)
                SELECT NULL::text AS message_id WHERE (SELECT n FROM total) = $3
                UNION ALL
                SELECT message_id FROM inserted WHERE (SELECT n FROM total) <> $3
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
        batch.arena.withUnsafeBytes { arena in
            for message in chunk {
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

    /// The staging rows of `chunk` in COPY's text format: tab-separated columns, `\N` for NULL,
    /// backslash, tab, newline and carriage return escaped.
    static func copyData(_ chunk: ArraySlice<StagedBatch.Message>, arena: UnsafeRawBufferPointer) -> ByteBuffer {
        var size = 0
        for message in chunk { size += message.body.count + 128 }
        var buffer = ByteBufferAllocator().buffer(capacity: size + size / 16)
        for (ordinal, message) in chunk.enumerated() {
            buffer.writeString(String(ordinal))
            buffer.writeInteger(UInt8(ascii: "\t"))
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
