/// Where validated messages are stored (SPEC §3): events deduplicated by messageId, the users and
/// the identity links they carry, each with the earliest event time that established it.
public protocol EventSink: Sendable {
    /// What text the store cannot hold, checked by the validator so that such a message is
    /// rejected with its reason before anything is written (PostgreSQL's `jsonb` and `text`
    /// cannot hold the character U+0000, nor an unpaired surrogate escape).
    var textLimits: StoredTextLimits { get }

    /// Opens a writer and hands it to `body`. What `body` has not committed when it ends — by
    /// returning or by throwing — is rolled back; the writer must not be used after `body`.
    func withEventWriter<T>(_ options: EventWriterOptions, _ body: (any EventWriter) async throws -> T)
        async throws -> T
}

/// Text a store cannot hold.
public enum StoredTextLimits: Sendable {
    /// Any JSON text (SQLite).
    case none
    /// No `\u0000` and no unpaired UTF-16 surrogate escape in a string (PostgreSQL).
    case noNullOrLoneSurrogate
}

/// How a writer groups its work into transactions.
public struct EventWriterOptions: Sendable {
    /// Messages per transaction: the writer commits on its own each time this many were written.
    /// Nil: it never does; everything waits for `EventWriter.commit()` (`ingest --strict`).
    public var transactionSize: Int?
    /// SQLite: the write-ahead log's size past which a transaction first waits for the checkpoint
    /// of the last commit, so that the log starts over (the store's default when nil).
    var walLimitBytes: Int?

    public init(transactionSize: Int? = 100_000) {
        self.transactionSize = transactionSize
    }
}

/// Writes staged batches. One task uses a writer at a time (an ingest, the server's committer).
public protocol EventWriter: Sendable {
    /// Stores the batch's messages whose messageId is new, in batch order, and notes the users and
    /// links they carry; returns what it stored. May commit on its own (`transactionSize`).
    func write(_ batch: StagedBatch) async throws -> EventWriteCounts
    /// Commits what was written since the last commit, identities included.
    func commit() async throws
    /// Forgets what was written since the last commit.
    func rollback() async
    /// Writes `batches` in order, as `write` would each, then commits: the server's group commit in
    /// one call, so that a group costs one hand-off to the writer's thread, not one per request.
    /// What was written is not committed when it throws (the caller rolls back).
    func writeAndCommit(_ batches: [StagedBatch]) async throws -> [EventWriteCounts]
}

extension EventWriter {
    /// `write` for each batch, then `commit`.
    public func writeAndCommit(_ batches: [StagedBatch]) async throws -> [EventWriteCounts] {
        var counts: [EventWriteCounts] = []
        counts.reserveCapacity(batches.count)
        for batch in batches { counts.append(try await write(batch)) }
        try await commit()
        return counts
    }
}

/// What writing a batch stored.
public struct EventWriteCounts: Sendable, Equatable {
    /// Messages newly stored.
    public var accepted = 0
    /// Messages whose messageId was already stored (or repeated earlier in the batch).
    public var duplicates = 0
    /// Newly stored messages without a `userId`.
    public var anonymous = 0

    public init(accepted: Int = 0, duplicates: Int = 0, anonymous: Int = 0) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.anonymous = anonymous
    }
}

/// A source and a day (since the epoch, UTC) of arrival: what `event_counts` counts messages by.
struct DayOfSource: Hashable {
    var source: String
    var day: Int64

    /// The batch's source (`ingest` for files) and day of arrival.
    init(_ batch: StagedBatch) {
        source = batch.source ?? "ingest"
        day = batch.receivedAt / 86_400_000
    }
}
