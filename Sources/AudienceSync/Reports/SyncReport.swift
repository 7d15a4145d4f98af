/// What one `sync` did (SPEC §10).
public struct SyncReport: Sendable, Encodable {
    public struct Pair: Sendable, Equatable, Encodable {
        public var key: String
        public var destination: String
        public var due = false
        public var firstSync = false
        /// Messages of this run acknowledged by the destination.
        public var sent = 0
        /// Messages refused for good (this run's or resumed ones).
        public var failed = 0
        /// Messages of earlier, interrupted runs delivered by this one.
        public var resumed = 0
        /// Messages left pending because delivery stopped (the next run sends them).
        public var pending = 0
        /// Messages of this run that can never be sent (also counted in `failed`); SPEC §7.
        public var invalid = 0
        /// Why the pair was not synced (an unsupported destination type).
        public var skipped: String?

        enum CodingKeys: String, CodingKey {
            case key, destination, due, firstSync = "first_sync", sent, failed, resumed, pending, invalid, skipped
        }
    }

    public struct Orphan: Sendable, Equatable, Encodable {
        public var key: String
        public var destination: String
        public var synced: Int
    }

    public var now: Int64
    public var pairs: [Pair] = []
    public var orphaned: [Orphan] = []
    /// Things the user should see on standard error.
    public var warnings: [String] = []

    /// SPEC §8's partial failure: a delivery failed or was left pending.
    public var hasFailures: Bool { pairs.contains { $0.failed > 0 || $0.pending > 0 } }

    enum CodingKeys: String, CodingKey { case now, pairs, orphaned }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Timestamp.format(now), forKey: .now)
        try container.encode(pairs, forKey: .pairs)
        try container.encode(orphaned, forKey: .orphaned)
    }

    /// One line per pair, for people.
    public var text: String {
        pairs.map { pair in
            var line = "\(pair.key) → \(pair.destination): "
            if let skipped = pair.skipped {
                line += "skipped (\(skipped))"
            } else if !pair.due && pair.resumed == 0 {
                line += "not due"
            } else {
                line += "\(pair.sent) sent, \(pair.failed) failed, \(pair.resumed) resumed"
                if pair.firstSync { line += " (first sync)" }
                if pair.invalid > 0 { line += " (\(pair.invalid) invalid: never sent)" }
                if pair.pending > 0 { line += ", \(pair.pending) still pending" }
            }
            return line
        }.joined(separator: "\n")
    }
}
