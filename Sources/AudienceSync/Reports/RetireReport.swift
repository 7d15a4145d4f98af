/// What one `retire` did (SPEC §6, §10).
public struct RetireReport: Sendable, Encodable {
    public struct Destination: Sendable, Equatable, Encodable {
        public var destination: String
        /// Removals (`false` or `null`) of this retire acknowledged by the destination.
        public var sent = 0
        /// Removals refused for good: those users stay in the snapshot; run `retire` again.
        public var failed = 0
        /// Removals left pending because delivery stopped (the next `retire` or `sync` sends them).
        public var pending = 0
        /// Messages of an earlier, interrupted run (sync or retire) of the pair delivered first.
        public var resumed = 0
        /// Whether the snapshot and the pair's record are gone: everything was acknowledged.
        public var dropped = false
    }

    public var key: String
    public var now: Int64
    public var destinations: [Destination] = []
    public var warnings: [String] = []

    /// SPEC §8's partial failure: a removal failed or was left pending.
    public var hasFailures: Bool { destinations.contains { $0.failed > 0 || $0.pending > 0 } }

    enum CodingKeys: String, CodingKey { case key, now, destinations }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(Timestamp.format(now), forKey: .now)
        try container.encode(destinations, forKey: .destinations)
    }

    public var text: String {
        destinations.map { item in
            var line = "\(key) → \(item.destination): \(item.sent) removed, \(item.failed) failed"
            if item.resumed > 0 { line += ", \(item.resumed) resumed" }
            if item.pending > 0 { line += ", \(item.pending) still pending" }
            line += item.dropped ? "; snapshot dropped" : "; snapshot kept (run 'audience-sync retire \(key)' again)"
            return line
        }.joined(separator: "\n")
    }
}
