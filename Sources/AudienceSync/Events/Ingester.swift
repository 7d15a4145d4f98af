import Foundation
import Logging

/// One rejected line (or message of a batch envelope).
public struct IngestError: Sendable, Equatable {
    /// The input file as the user named it (`-` is shown as `stdin`).
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// For a message of a batch envelope: its 0-based index in `batch`.
    public var index: Int?
    public var reason: String

    public init(file: String, line: Int, index: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.index = index
        self.reason = reason
    }

    /// `events.ndjson:12: reason` or `events.ndjson:12 [batch 3]: reason`.
    public var description: String {
        "\(file):\(line)" + (index.map { " [batch \($0)]" } ?? "") + ": \(reason)"
    }

    public var json: JSONValue {
        var members: [JSONValue.Member] = [.init("file", .string(file)), .init("line", .int(line))]
        if let index { members.append(.init("index", .int(index))) }
        members.append(.init("reason", .string(reason)))
        return .object(members)
    }
}

/// What an ingest did (SPEC §10 `ingest`).
public struct IngestSummary: Sendable {
    /// Messages newly stored.
    public var accepted = 0
    /// Valid messages whose `messageId` was already stored.
    public var duplicates = 0
    /// Rejected lines and batch messages.
    public var rejected = 0
    /// Newly stored messages without a `userId` (anonymous only).
    public var anonymous = 0
    /// Non-blank lines read.
    public var lines = 0
    public var bytes = 0
    /// The first rejections (at most `IngestOptions.maximumErrorsKept`); all go to the rejects file.
    public var errors: [IngestError] = []
    /// False when `--strict` refused the input: then nothing was stored.
    public var stored = true
    public var seconds = 0.0

    public var errorsOmitted: Int { rejected - errors.count }

    public var json: JSONValue {
        var members: [JSONValue.Member] = [
            .init("accepted", .int(accepted)), .init("duplicates", .int(duplicates)),
            .init("rejected", .int(rejected)), .init("anonymous", .int(anonymous)),
            .init("errors", .array(errors.map(\.json))),
        ]
        if errorsOmitted > 0 { members.append(.init("errors_omitted", .int(errorsOmitted))) }
        members.append(.init("stored", .bool(stored)))
        members.append(.init("lines", .int(lines)))
        return .object(members)
    }
}

public struct IngestOptions: Sendable {
    /// Store nothing when any line is bad.
    public var strict = false
    /// Write rejected lines with their reasons here, as NDJSON.
    public var rejectsPath: String?
    /// Event time for messages without any timestamp; also recorded as `received_at`.
    public var now: Int64
    /// Messages per transaction (outside `strict`, where there is one transaction).
    public var transactionSize = 100_000
    /// Distinct user ids (or links) numbered before the numbering starts over (`IdentityNumbers`).
    var identityNumberLimit = 1 << 20
    /// WAL size past which a transaction waits for the checkpoint of the last commit (`WALCheckpointer`).
    var walLimitBytes = WALCheckpointer.defaultWALLimitBytes
    public static let maximumErrorsKept = 1000

    public init(strict: Bool = false, rejectsPath: String? = nil, now: Int64) {
        self.strict = strict
        self.rejectsPath = rejectsPath
        self.now = now
    }
}

/// Progress of a long ingest, reported about every 100,000 lines.
public struct IngestProgress: Sendable {
    public var lines: Int
    public var bytes: Int
    public var accepted: Int
    public var seconds: Double
}

/// Streams NDJSON into the event store (SPEC §3.1): validates each line, stores the valid messages
/// in large transactions with prepared statements, and counts duplicates and rejections.
///
/// Two threads share the work: one reads and validates lines into batches (`LineStager`), the
/// calling thread stores them, so parsing runs on one core while SQLite runs on the other.
/// Use one `Ingester` per command: `ingest(path:)` for each input, then `finish()`.
public final class Ingester {
    private let store: EventStore
    private let options: IngestOptions
    private let logger: Logger
    private let progress: ((IngestProgress) -> Void)?
    private var summary = IngestSummary()
    private let started = Date()

    private let insertEvent: Statement
    private let insertChunk: Statement
    private let readInsertedIds: Statement
    private let upsertUser: Statement
    private let upsertLink: Statement
    private var inTransaction = false
    private var pendingInTransaction = 0
    /// Numbers users and links on the parsing thread, which takes them while it reads an input.
    private let identityNumbers: IdentityNumbers.Box
    /// The earliest time of each numbered user and link: known to be stored, or to write at commit.
    private var identities = EarliestIdentities()
    private var rejects: FileHandle?
    private var lastProgressLines = 0
    /// Checkpoints the WAL on another thread while this ingest runs (nil: SQLite's own checkpoints).
    private var checkpointer: WALCheckpointer?
    /// The connection's automatic checkpoint setting, restored when the ingest ends.
    private var automaticCheckpointPages = 1000

    public init(
        store: EventStore, options: IngestOptions, logger: Logger, progress: ((IngestProgress) -> Void)? = nil
    ) throws {
        self.store = store
        self.options = options
        self.logger = logger
        self.progress = progress
        identityNumbers = IdentityNumbers.Box(IdentityNumbers(limit: options.identityNumberLimit))
        let database = store.database
        // `OR IGNORE`, not `ON CONFLICT (message_id) DO NOTHING`: the only constraint a bound row can
        // break is the message id's uniqueness, where both skip the row. But with an upsert clause the
        // NOT NULL checks keep their default ABORT, so SQLite must be able to undo a half-done
        // multi-row statement and copies every page the statement first touches into a statement
        // journal (a temporary file): 2.2 GB written for 200,000 events. `OR IGNORE` cannot abort.
        // Every row's received_at is the ingest time, parameter ?1, bound once per batch; row r's other
        // seven columns are parameters 7r + 2 … 7r + 8.
        func row(_ row: Int) -> String {
            let first = 7 * row + 2
            return "(?\(first), ?\(first + 1), ?\(first + 2), ?\(first + 3), ?\(first + 4), ?\(first + 5), ?1, ?\(first + 6))"
        }
        insertEvent = try database.prepare(
            """
            INSERT OR IGNORE INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, message)
            VALUES \(row(0))
            """, persistent: true)
        insertChunk = try database.prepare(
            """
            INSERT OR IGNORE INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, message)
            VALUES \((0..<Ingester.rowsPerInsert).map(row).joined(separator: ", "))
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
        if let path = options.rejectsPath {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
            else {
                throw AudienceSyncError(.io, "cannot write the rejects file", file: path)
            }
            rejects = handle
        }
        if let pages = try database.prepare("PRAGMA wal_autocheckpoint").scalar()?.int64,
            let pageSize = try database.prepare("PRAGMA page_size").scalar()?.int64,
            let checkpointer = WALCheckpointer(
                path: database.path, pageSize: Int(pageSize), walLimitBytes: options.walLimitBytes)
        {
            automaticCheckpointPages = Int(pages)
            self.checkpointer = checkpointer
            database.recordWALSizeInsteadOfCheckpointing()
        }
    }

    deinit {
        stopCheckpointing()
    }

    /// Ends the checkpoint thread (after it has copied the last commit) and gives the connection
    /// back its automatic checkpoints.
    private func stopCheckpointing() {
        guard let checkpointer else { return }
        checkpointer.stop()
        self.checkpointer = nil
        try? store.database.execute("PRAGMA wal_autocheckpoint = \(automaticCheckpointPages)")
    }

    /// Ingests one input: a file path, or `-` for standard input.
    public func ingest(path: String) throws {
        let name = path == "-" ? "stdin" : path
        let descriptor: Int32
        if path == "-" {
            descriptor = 0
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw AudienceSyncError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
            }
        }
        defer { if descriptor != 0 { close(descriptor) } }

        let queue = BoundedQueue<StagedBatch>(capacity: 4)
        let finished = DispatchSemaphore(value: 0)
        let (validator, strict, sawRejection) = (MessageValidator(ingestTime: options.now), options.strict, !summary.stored)
        let numbers = identityNumbers
        let parser = Thread {
            // The numbering is moved in and out, never copied: a copy would be duplicated on its first change.
            var stager = LineStager(validator: validator, strict: strict, identities: numbers.take())
            stager.sawRejection = sawRejection
            stager.stage(descriptor: descriptor, file: name) { queue.put($0) }
            numbers.numbers = stager.takeIdentities()
            queue.close()
            finished.signal()
        }
        parser.name = "audience-sync ingest parser"
        parser.start()
        // Whatever happens here, the parser is stopped and gone before the descriptor is closed.
        defer {
            queue.close()
            finished.wait()
        }

        let bytesBefore = summary.bytes
        while let batch = queue.take() {
            try store(batch)
            summary.bytes = bytesBefore + batch.bytes
            if let failure = batch.failure {
                // The input could not be read to its end (a truncated or corrupt gzip stream, a read
                // error): the lines before are kept like any other valid line (SPEC §3.1), so they
                // are committed before the error ends the ingest — except under --strict, where bad
                // input means nothing is stored.
                if !options.strict { try commit() }
                if var error = failure as? AudienceSyncError, error.file == nil {
                    error.file = name
                    throw error
                }
                throw failure
            }
            if summary.lines - lastProgressLines >= 100_000 {
                lastProgressLines = summary.lines
                progress?(
                    IngestProgress(
                        lines: summary.lines, bytes: summary.bytes, accepted: summary.accepted,
                        seconds: Date().timeIntervalSince(started)))
            }
        }
    }

    /// Commits what is pending (under `--strict` with rejections, nothing is) and returns the summary.
    public func finish() throws -> IngestSummary {
        if summary.stored {
            try commit()
        }
        stopCheckpointing()
        try rejects?.synchronize()
        try rejects?.close()
        rejects = nil
        summary.seconds = Date().timeIntervalSince(started)
        logger.info(
            "ingest finished",
            metadata: [
                "accepted": "\(summary.accepted)", "duplicates": "\(summary.duplicates)",
                "rejected": "\(summary.rejected)", "anonymous": "\(summary.anonymous)",
                "seconds": "\(summary.seconds)",
            ])
        return summary
    }

    /// Abandons the ingest: rolls back the open transaction (earlier committed batches stay).
    public func abandon() {
        store.database.rollbackQuietly()
        inTransaction = false
        identities.forgetTimes()
        stopCheckpointing()
    }

    // MARK: Storing

    private func store(_ batch: StagedBatch) throws {
        summary.lines += batch.lines
        if batch.renumbered {
            try writePendingIdentities()
            identities.removeAll()
        }
        identities.add(batch)
        for rejected in batch.rejected { try reject(rejected) }
        guard summary.stored else { return }
        let messages = batch.messages
        insertEvent.reset()
        insertChunk.reset()
        try insertEvent.bindInt64(options.now, at: 1)
        try insertChunk.bindInt64(options.now, at: 1)
        try batch.arena.withUnsafeBytes { arena in
            defer {
                insertEvent.clearBindings()
                insertChunk.clearBindings()
            }
            var index = 0
            while index < messages.count {
                let room = options.strict ? Int.max : max(1, options.transactionSize - pendingInTransaction)
                let count = min(Ingester.rowsPerInsert, messages.count - index, room)
                let chunk = messages[index..<(index + count)]
                if count == Ingester.rowsPerInsert {
                    try insert(chunk, arena: arena)
                } else {
                    for message in chunk { try insert(message, arena: arena) }
                }
                index += count
                if !options.strict && pendingInTransaction >= options.transactionSize {
                    try commit()
                }
            }
        }
    }

    /// Rows per multi-row INSERT: each statement run opens cursors on the table and every index,
    /// so inserting rows in groups divides that cost.
    static let rowsPerInsert = 32

    private func beginIfNeeded() throws {
        if !inTransaction {
            checkpointer?.waitIfWALIsLarge()
            try store.database.execute("BEGIN IMMEDIATE TRANSACTION")
            inTransaction = true
        }
    }

    /// Binds `message` as row `row` (0-based) of `statement`, without copying its bytes (received_at,
    /// parameter 1, is bound once for all rows).
    private func bind(_ message: StagedBatch.Message, row: Int, to statement: Statement, arena: UnsafeRawBufferPointer)
        throws
    {
        let base = row * 7
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

    private func insert(_ message: StagedBatch.Message, arena: UnsafeRawBufferPointer) throws {
        try beginIfNeeded()
        insertEvent.reset()
        try bind(message, row: 0, to: insertEvent, arena: arena)
        try insertEvent.step()
        pendingInTransaction += 1
        if store.database.changes == 1 {
            record(message, arena: arena)
        } else {
            summary.duplicates += 1
        }
    }

    private func insert(_ chunk: ArraySlice<StagedBatch.Message>, arena: UnsafeRawBufferPointer) throws {
        try beginIfNeeded()
        insertChunk.reset()
        for (row, message) in chunk.enumerated() { try bind(message, row: row, to: insertChunk, arena: arena) }
        try insertChunk.step()
        pendingInTransaction += chunk.count
        let inserted = store.database.changes
        if inserted == chunk.count {
            for message in chunk { record(message, arena: arena) }
            return
        }
        // Some were duplicates. The rows this statement inserted have consecutive rowids ending
        // at the last insert rowid: read their ids to know which messages they were.
        var storedIds = Set<String>()
        if inserted > 0 {
            try readInsertedIds.forEachRow([.integer(store.database.lastInsertRowID - Int64(inserted))]) { row in
                if let id = row.text(0) { storedIds.insert(id) }
            }
        }
        for message in chunk {
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: arena[message.messageId]), as: UTF8.self)
            // Within one statement a repeated id is inserted once: count later copies as duplicates.
            if storedIds.remove(id) != nil {
                record(message, arena: arena)
            } else {
                summary.duplicates += 1
            }
        }
    }

    /// Counts a newly stored message and notes its user and identity links for the commit.
    private func record(_ message: StagedBatch.Message, arena: UnsafeRawBufferPointer) {
        summary.accepted += 1
        guard message.user >= 0 else {
            summary.anonymous += 1
            return
        }
        identities.noteUser(message.user, time: message.time)
        let messageId = { String(decoding: UnsafeRawBufferPointer(rebasing: arena[message.messageId]), as: UTF8.self) }
        if message.link >= 0 { identities.noteLink(message.link, time: message.time, messageId: messageId) }
        if message.previousLink >= 0 { identities.noteLink(message.previousLink, time: message.time, messageId: messageId) }
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
        } catch {
            store.database.rollbackQuietly()
            inTransaction = false
            identities.forgetTimes()
            throw error
        }
        identities.clearPending()
    }

    /// Writes the users and links gathered in the open transaction, then commits it.
    private func commit() throws {
        guard inTransaction else { return }
        try writePendingIdentities()
        do {
            try store.database.execute("COMMIT TRANSACTION")
        } catch {
            store.database.rollbackQuietly()
            inTransaction = false
            identities.forgetTimes()
            throw error
        }
        inTransaction = false
        pendingInTransaction = 0
        checkpointer?.committed(walFrames: store.database.walFramesAtLastCommit)
    }

    // MARK: Rejections

    private func reject(_ rejected: StagedBatch.Rejected) throws {
        let error = rejected.error
        summary.rejected += 1
        if summary.errors.count < IngestOptions.maximumErrorsKept { summary.errors.append(error) }
        logger.debug("rejected", metadata: ["where": "\(error.file):\(error.line)", "reason": "\(error.reason)"])
        if options.strict && summary.stored {
            // Nothing may be stored: undo this run's work; the stager stops staging messages.
            store.database.rollbackQuietly()
            inTransaction = false
            summary.stored = false
            summary.accepted = 0
            summary.duplicates = 0
            summary.anonymous = 0
            identities.forgetTimes()
        }
        if let rejects {
            var record = error.json
            if case .object(var members) = record {
                members.append(JSONValue.Member("input", rejected.input))
                record = .object(members)
            }
            var bytes: [UInt8] = []
            record.write(into: &bytes, sortedKeys: false)
            bytes.append(0x0A)
            try rejects.write(contentsOf: bytes)
        }
    }

    /// The rejected input as it will be written to the rejects file: the JSON value when it parses
    /// (without any `writeKey`, also those of the messages of a batch), else the text — unless it may
    /// hold a write key, which is never written anywhere.
    static func rejectedInput(_ input: UnsafeBufferPointer<UInt8>?) -> JSONValue {
        guard let input else { return .null }
        if let value = try? JSONValue.parse(input) { return withoutWriteKeys(value) }
        let text = String(decoding: input, as: UTF8.self)
        if text.contains("writeKey") { return .string("(withheld: the line may contain a write key)") }
        return .string(text)
    }

    /// `value` with every `writeKey` member removed, at any depth (nesting is bounded by the scanner).
    private static func withoutWriteKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.filter { $0.key != "writeKey" }.map { .init($0.key, withoutWriteKeys($0.value)) })
        case .array(let elements): return .array(elements.map(withoutWriteKeys))
        default: return value
        }
    }
}
