/// The sync state on a PostgreSQL store. This version keeps no sync state there: the events,
/// `validate`, `members`, `explain` and the events half of `status` work on PostgreSQL; `sync`,
/// `diff` and `retire` need an SQLite store. Reads answer "nothing synced yet"; a write is an error
/// that says so.
extension PostgresStore {
    private func unsupported() -> AudienceSyncError {
        AudienceSyncError(
            .configuration,
            "\(location): sync, diff and retire do not run on a PostgreSQL store in this version; use an SQLite store (database: a file path) for them"
        )
    }

    public func pairRecord(_ pair: PairName) async throws -> PairRecord { PairRecord(lastSyncedAt: nil, isFirstSync: true) }
    public func nextRunId() async throws -> Int64 { throw unsupported() }
    public func stageDiff(_ request: DiffRequest) async throws -> PairDiff { throw unsupported() }
    public func stagedChanges(from position: Int, limit: Int) async throws -> [PairChange] { throw unsupported() }
    public func writeRun(_ run: OutboxRun) async throws -> WrittenRun? { throw unsupported() }
    public func pendingPairs() async throws -> [PairName] { [] }
    public func pendingCount(_ pair: PairName) async throws -> Int { 0 }
    public func pendingMessages(_ pair: PairName, after id: Int64, limit: Int) async throws -> [OutboundMessage] { [] }
    public func acknowledge(_ pair: PairName, after: Int64, through: Int64, count: Int) async throws {
        throw unsupported()
    }
    public func record(_ outcomes: [MessageOutcome], at time: Int64) async throws { throw unsupported() }
    public func finishRun(_ runId: Int64, durationMilliseconds: Int64?) async throws { throw unsupported() }
    public func unfinishedRuns(_ pair: PairName) async throws -> [Int64] { [] }
    public func lastRun(_ pair: PairName) async throws -> RunSummary? { nil }
    public func pruneDeliveredMessages(startedBefore cutoff: Int64) async throws {}
    public func snapshotSizes() async throws -> [PairSize] { [] }
    public func destinationsHoldingState(key: String) async throws -> [String] { [] }
    public func lastMessage(key: String) async throws -> String? { nil }
    public func snapshotHoldsValuesOtherThanTrue(key: String) async throws -> Bool { false }
    public func dropPairIfRetired(_ pair: PairName) async throws -> Bool { throw unsupported() }
}
