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

    /// The events one source sent on each of the last `SyncStatus.days` days (oldest first).
    public struct Source: Sendable, Encodable {
        public struct Day: Sendable, Encodable {
            /// `2026-11-22` (UTC).
            public var day: String
            public var events: Int
        }
        public var source: String
        public var events: Int
        public var days: [Day]
    }

    /// How many days of arrivals `status` shows, today included.
    public static let days = 7

    public var now: Int64
    public var pairs: [Pair] = []
    public var orphaned: [SyncReport.Orphan] = []
    public var anonymousEvents: Int = 0
    /// Events stored per source (`ingest` for files, else the server's source) over the last days.
    public var sources: [Source] = []

    enum CodingKeys: String, CodingKey { case pairs, orphaned, anonymousEvents = "anonymous_events", sources }

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
        if sources.isEmpty {
            lines.append("no events received in the last \(Self.days) days")
        } else {
            lines.append("events received in the last \(Self.days) days (UTC days, oldest first):")
            for source in sources {
                let days = source.days.map { "\($0.day.dropFirst(5)) \($0.events)" }.joined(separator: ", ")
                lines.append("  \(source.source): \(source.events) (\(days))")
            }
        }
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
