/// The dry-run diff of SPEC §7: what a `sync --force` at the same `now` would send, worked out
/// without changing anything.
public struct DiffReport: Sendable, Encodable {
    public struct Pair: Sendable {
        public var key: String
        public var kind: Definition.Kind
        public var destination: String
        public var firstSync: Bool
        public var due: Bool
        public var nextDueAt: Int64
        public var lastSyncedAt: Int64?
        public var counts: PairCounts
        /// Changes whose message can never be sent (`SyncMessage.invalidReason`): `sync` records
        /// them as failed without sending them. They are counted in entered/exited/changed too.
        public var invalid = 0
        /// The first of those, with their reasons (at most the sample size).
        public var invalidSample: [InvalidMessage] = []
        public var sample: [PairChange.Kind: [String]]
        /// Why `sync` would skip the pair (an unsupported destination type).
        public var skipped: String?
    }

    public var now: Int64
    public var pairs: [Pair] = []
    /// How many messages `sync --force` would send: pending outbox work and each supported pair's
    /// changes, less the invalid ones.
    public var messageCount = 0
    /// Those messages, as compact JSON text, in sending order, when the dry run was asked to
    /// collect them (`DryRunMessages.collect`).
    public var messages: [String] = []

    enum CodingKeys: String, CodingKey { case now, pairs }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Timestamp.format(now), forKey: .now)
        try container.encode(pairs, forKey: .pairs)
    }

    /// A table for people: one line per pair, then what would be skipped or never sent.
    public var text: String {
        let header = [
            "key", "destination", "first", "due", "members", "synced", "enter", "exit", "change", "same", "invalid",
            "pending",
        ]
        var rows = [header]
        for pair in pairs {
            rows.append([
                pair.key, pair.destination, pair.firstSync ? "yes" : "no",
                pair.skipped != nil ? "skipped" : pair.due ? "yes" : "no", "\(pair.counts.members)",
                "\(pair.counts.synced)", "\(pair.counts.entered)", "\(pair.counts.exited)", "\(pair.counts.changed)",
                "\(pair.counts.unchanged)", "\(pair.invalid)", "\(pair.counts.pending)",
            ])
        }
        var lines = ["diff at \(Timestamp.format(now))"] + TextTable.render(rows)
        for pair in pairs {
            if let skipped = pair.skipped { lines.append("\(pair.key) → \(pair.destination): \(skipped)") }
            for invalid in pair.invalidSample {
                lines.append("\(pair.key) → \(pair.destination): not sent to \(invalid.userId): \(invalid.reason)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension DiffReport.Pair: Encodable {
    enum CodingKeys: String, CodingKey {
        case key, kind, destination, firstSync = "first_sync", due, nextDueAt = "next_due_at"
        case lastSyncedAt = "last_synced_at", members, synced, entered, exited, changed, unchanged, invalid
        case invalidSample = "invalid_sample", pending, sample, skipped
    }

    struct Sample: Encodable {
        var entered: [String]
        var exited: [String]
        var changed: [String]
    }

    struct InvalidItem: Encodable {
        var userId: String
        var reason: String
        enum CodingKeys: String, CodingKey { case userId = "user_id", reason }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(kind.rawValue, forKey: .kind)
        try container.encode(destination, forKey: .destination)
        try container.encode(firstSync, forKey: .firstSync)
        try container.encode(due, forKey: .due)
        try container.encode(Timestamp.format(nextDueAt), forKey: .nextDueAt)
        try container.encode(lastSyncedAt.map(Timestamp.format), forKey: .lastSyncedAt)
        try container.encode(counts.members, forKey: .members)
        try container.encode(counts.synced, forKey: .synced)
        try container.encode(counts.entered, forKey: .entered)
        try container.encode(counts.exited, forKey: .exited)
        try container.encode(counts.changed, forKey: .changed)
        try container.encode(counts.unchanged, forKey: .unchanged)
        try container.encode(invalid, forKey: .invalid)
        try container.encode(invalidSample.map { InvalidItem(userId: $0.userId, reason: $0.reason) }, forKey: .invalidSample)
        try container.encode(counts.pending, forKey: .pending)
        try container.encode(
            Sample(entered: sample[.entered] ?? [], exited: sample[.exited] ?? [], changed: sample[.changed] ?? []),
            forKey: .sample)
        try container.encodeIfPresent(skipped, forKey: .skipped)
    }
}
