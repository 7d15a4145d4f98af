/// The state of every pair for `status` (SPEC §10).
public struct SyncStatus: Sendable, Encodable {
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

    enum CodingKeys: String, CodingKey { case pairs, orphaned, anonymousEvents = "anonymous_events" }

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

extension SyncStatus.Pair: Encodable {
    enum CodingKeys: String, CodingKey {
        case key, destination, lastSyncedAt = "last_synced_at", nextDueAt = "next_due_at", synced, pending, failed
        case lastOutcome = "last_outcome"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(destination, forKey: .destination)
        try container.encode(lastSyncedAt.map(Timestamp.format), forKey: .lastSyncedAt)
        try container.encode(Timestamp.format(nextDueAt), forKey: .nextDueAt)
        try container.encode(synced, forKey: .synced)
        try container.encode(pending, forKey: .pending)
        try container.encode(failed, forKey: .failed)
        try container.encode(lastOutcome, forKey: .lastOutcome)
    }
}
