/// The state of every pair for `status` (SPEC §10).
public struct SyncStatus: Sendable {
    public struct Pair: Sendable {
        public var key: String
        public var destination: String
        public var lastSyncedAt: Int64?
        public var nextDueAt: Int64
        public var synced: Int
        public var pending: Int
        /// Messages of the pair's last run refused for good.
        public var failed: Int
        /// `ok`, `partial` or `failed` (an interrupted run counts as failed); nil before the first run.
        public var lastOutcome: String?
    }

    public var now: Int64
    public var pairs: [Pair] = []
    public var orphaned: [SyncReport.Orphan] = []
    public var anonymousEvents: Int = 0

    public static func load(engine: MembershipEngine, configuration: Configuration, now: Int64) throws -> SyncStatus {
        let database = engine.store.database
        let state = SyncState(database: database)
        var status = SyncStatus(now: now)
        for pair in try SyncSelection().pairs(definitions: engine.definitions, configuration: configuration) {
            let values: [SQLiteValue] = [.text(pair.key), .text(pair.destination.name)]
            let lastSyncedAt = try state.lastSyncedAt(key: pair.key, destination: pair.destination.name)
            let lastRun = try database.prepare(
                "SELECT outcome, failed FROM runs WHERE key = ?1 AND destination = ?2 ORDER BY id DESC LIMIT 1"
            ).rows(values).first
            let outcome = lastRun?[0].string.map { $0 == "running" ? "failed" : $0 }
            status.pairs.append(
                Pair(
                    key: pair.key, destination: pair.destination.name, lastSyncedAt: lastSyncedAt,
                    nextDueAt: pair.nextDueAt(lastSyncedAt: lastSyncedAt, now: now),
                    synced: try state.count("SELECT count(*) FROM snapshots WHERE key = ?1 AND destination = ?2", values),
                    pending: try state.pendingCount(key: pair.key, destination: pair.destination.name),
                    failed: Int(lastRun?[1].int64 ?? 0), lastOutcome: outcome))
        }
        status.orphaned = try state.orphans(known: engine.definitions.knownPairs()).map {
            SyncReport.Orphan(key: $0.key, destination: $0.destination, synced: $0.count)
        }
        status.anonymousEvents = try engine.store.unlinkedAnonymousEventCount(now: now)
        return status
    }

    public var json: JSONValue {
        .object([
            "pairs": .array(
                pairs.map { pair in
                    .object([
                        "key": .string(pair.key), "destination": .string(pair.destination),
                        "last_synced_at": .string(pair.lastSyncedAt.map(Timestamp.format)),
                        "next_due_at": .string(Timestamp.format(pair.nextDueAt)), "synced": .int(pair.synced),
                        "pending": .int(pair.pending), "failed": .int(pair.failed),
                        "last_outcome": .string(pair.lastOutcome),
                    ])
                }),
            "orphaned": .array(
                orphaned.map {
                    .object(["key": .string($0.key), "destination": .string($0.destination), "synced": .int($0.synced)])
                }),
            "anonymous_events": .int(anonymousEvents),
        ])
    }

    public var text: String {
        var lines: [String] = []
        for pair in pairs {
            let last = pair.lastSyncedAt.map(Timestamp.format) ?? "never"
            lines.append(
                "\(pair.key) → \(pair.destination): last synced \(last), next due \(Timestamp.format(pair.nextDueAt)), "
                    + "\(pair.synced) synced, \(pair.pending) pending, \(pair.failed) failed, last outcome \(pair.lastOutcome ?? "none")"
            )
        }
        for orphan in orphaned {
            lines.append(
                "warning: \(orphan.key) → \(orphan.destination): orphaned snapshot of \(orphan.synced) users "
                    + "(no definition has this key any more): run 'audience-sync retire \(orphan.key)' to remove them "
                    + "from \(orphan.destination) and drop it")
        }
        lines.append("\(anonymousEvents) events of anonymous visitors count for no one")
        return lines.joined(separator: "\n")
    }
}
