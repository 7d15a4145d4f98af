/// The sync state (SPEC §6): per (definition, destination) pair the snapshot the destination last
/// acknowledged, the durable outbox of messages decided on, the runs, and when each pair last
/// completed a sync.
///
/// The guarantees are the store's to keep: a run's outbox is written in one transaction before
/// anything is sent; an acknowledged batch is marked delivered and applied to the snapshot in one
/// transaction; a refused message never reaches the snapshot; pending messages are read back with
/// the bytes and messageIds they were written with; outbox ids grow, so a delivery mark never
/// covers a row written after it.
public protocol SyncStateStore: Sendable {
    /// When the pair last completed a sync, and whether it has never been synced.
    func pairRecord(_ pair: PairName) async throws -> PairRecord

    /// The id the next run will get (run ids are never reused: messageIds are derived from them).
    func nextRunId() async throws -> Int64

    // MARK: Diff

    /// Diffs the pair's current state — the rows of `request.members`, the definition's statement,
    /// read in the byte order of user ids — against its snapshot with the pending outbox work laid
    /// over it, and keeps the changes for `stagedChanges` and `writeRun` until the next diff.
    /// Writes nothing to the store: a read-only store can diff.
    func stageDiff(_ request: DiffRequest) async throws -> PairDiff

    /// The changes of the last diff, in user-id order, from `position` on (0 first), at most `limit`.
    func stagedChanges(from position: Int, limit: Int) async throws -> [PairChange]

    // MARK: Outbox

    /// Writes a run and its messages (the last diff's changes, or a removal for every user of the
    /// snapshot) to the outbox in one transaction, each message made by `run.messages`. A message
    /// that can never be sent is written as failed with its reason, and returned. Nil when there
    /// was nothing to write a run for (a removal of an empty snapshot).
    func writeRun(_ run: OutboxRun) async throws -> WrittenRun?

    /// The pairs with messages still owed to their destination, oldest work first.
    func pendingPairs() async throws -> [PairName]

    /// The number of the pair's messages still owed to its destination.
    func pendingCount(_ pair: PairName) async throws -> Int

    /// The pair's messages still owed after outbox id `id`, in outbox order, at most `limit`.
    func pendingMessages(_ pair: PairName, after id: Int64, limit: Int) async throws -> [OutboundMessage]

    /// Records a batch the destination acknowledged whole: the pair's pending messages with ids in
    /// `(after, through]` — exactly `count` of them, each of another user — are applied to the
    /// snapshot and marked delivered, in one transaction. Throws, changing nothing, when the
    /// outbox does not hold exactly those.
    func acknowledge(_ pair: PairName, after: Int64, through: Int64, count: Int) async throws

    /// Records a batch message by message, in order, in one transaction: acknowledged messages are
    /// marked delivered and applied to the snapshot, refused ones marked failed with their reason;
    /// those left pending stay as they are.
    func record(_ outcomes: [MessageOutcome], at time: Int64) async throws

    // MARK: Runs

    /// Records a run's counts and outcome from its messages. A run with nothing left pending is
    /// complete: the pair's last completed sync becomes the run's start, unless a later one is.
    func finishRun(_ runId: Int64, durationMilliseconds: Int64?) async throws

    /// The pair's runs recorded as running or failed, oldest first (an interrupted run's messages
    /// may have been delivered since).
    func unfinishedRuns(_ pair: PairName) async throws -> [Int64]

    /// The last run of the pair: its outcome and failed count; nil before the first.
    func lastRun(_ pair: PairName) async throws -> RunSummary?

    /// Deletes the delivered messages of runs that started before `cutoff`. Pending and failed
    /// messages always stay, and so does the newest outbox row (ids keep growing).
    func pruneDeliveredMessages(startedBefore cutoff: Int64) async throws

    // MARK: Snapshots

    /// The size of every pair's snapshot that has one, by key and destination.
    func snapshotSizes() async throws -> [PairSize]

    /// The destinations where `key` has a snapshot, pending messages or a record of a sync.
    func destinationsHoldingState(key: String) async throws -> [String]

    /// The newest outbox message ever written for `key` (any destination), as JSON text.
    func lastMessage(key: String) async throws -> String?

    /// Whether some snapshot row of `key` holds a value other than `true` (only computed traits do).
    func snapshotHoldsValuesOtherThanTrue(key: String) async throws -> Bool

    /// Drops the pair's record when its snapshot is empty and nothing is pending, so that a
    /// definition that takes the key again starts with a first sync; true when it did.
    func dropPairIfRetired(_ pair: PairName) async throws -> Bool
}

/// A (definition key, destination name) pair by name.
public struct PairName: Hashable, Sendable, Comparable {
    public var key: String
    public var destination: String

    public init(key: String, destination: String) {
        self.key = key
        self.destination = destination
    }

    public static func < (left: PairName, right: PairName) -> Bool {
        (left.key, left.destination) < (right.key, right.destination)
    }
}

/// What the store knows of a pair before a sync.
public struct PairRecord: Sendable, Equatable {
    /// When the last completed sync started; nil when none completed.
    public var lastSyncedAt: Int64?
    /// No completed sync and no snapshot row: the next sync sends every member.
    public var isFirstSync: Bool
}

/// What `SyncStateStore.stageDiff` diffs.
public struct DiffRequest: Sendable {
    public var pair: PairName
    public var kind: Definition.Kind
    /// The definition's compiled statement: `uid` (audience) or `uid, value` (computed trait) rows
    /// ordered by the bytes of `uid`.
    public var members: CompiledQuery
    /// User ids kept per kind of change for the report.
    public var sampleSize: Int
}

/// The counts of a diff and a sample of its changes.
public struct PairDiff: Sendable, Equatable {
    public var counts: PairCounts
    public var sample: [PairChange.Kind: [String]]
}

/// A run to write to the outbox.
public struct OutboxRun: Sendable {
    public enum Changes: Sendable {
        /// The changes of the last `stageDiff` of the pair.
        case stagedDiff
        /// A removal of every user of the pair's snapshot, with this value (`false`, `null`).
        case removals(value: String)
    }

    public var pair: PairName
    /// The run's `now`: its start, and the time of its messages.
    public var startedAt: Int64
    public var firstSync: Bool
    public var changes: Changes
    /// How each change becomes its message.
    public var messages: OutboxMessageMaker
}

/// A run written to the outbox.
public struct WrittenRun: Sendable, Equatable {
    public var runId: Int64
    /// Messages written as failed because they can never be sent.
    public var invalid: [InvalidMessage]
}

/// What a destination made of one outbox message.
public struct MessageOutcome: Sendable, Equatable {
    public var id: Int64
    public var result: DeliveryResult

    public init(id: Int64, result: DeliveryResult) {
        self.id = id
        self.result = result
    }
}

/// The size of a pair's snapshot.
public struct PairSize: Sendable, Equatable {
    public var pair: PairName
    public var count: Int
}

/// A run's outcome as `status` shows it.
public struct RunSummary: Sendable, Equatable {
    /// `running`, `ok`, `partial` or `failed`.
    public var outcome: String
    public var failed: Int
}
