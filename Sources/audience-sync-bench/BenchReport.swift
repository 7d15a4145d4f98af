import AudienceSync

/// The figures of one benchmark run, written as one JSON object with a fixed key order:
/// first the fields of the benchmark contract, then the details. Unmeasured figures are null.
struct BenchReport {
    var users: Int
    var events: Int
    var seed: UInt64
    var stages: [String] = []

    /// Accepted messages per wall-clock second of ingest (including the final commit).
    var ingestEventsPerSecond: Double?
    /// Seconds per definition key, and `total`.
    var computeSeconds: [(key: String, seconds: Double)]?
    /// The same definitions as hand-written SQL, for comparison.
    var baselineSQLSeconds: [(key: String, seconds: Double)]?
    var diffSeconds: Double?
    var deliverFileMessagesPerSecond: Double?
    var deliverHTTPMessagesPerSecond: Double?
    /// The whole process's peak resident set (generation included).
    var peakResidentMebibytes: Double?
    /// The database file plus its `-wal`, after the stages ran.
    var databaseBytes: Int?

    /// Seconds to write the generated NDJSON file (not part of ingest).
    var generateSeconds: Double?
    /// The peak resident set before ingest started (generation only).
    var peakResidentBeforeIngestMebibytes: Double?
    var ingestSeconds: Double?
    var ingestSummary: IngestSummary?

    init(users: Int, events: Int, seed: UInt64) {
        self.users = users
        self.events = events
        self.seed = seed
    }

    var json: JSONValue {
        .object([
            "users": .int(users),
            "events": .int(events),
            "ingest_events_per_s": rounded(ingestEventsPerSecond, places: 0),
            "compute_s": timings(computeSeconds),
            "baseline_sql_s": timings(baselineSQLSeconds),
            "diff_s": rounded(diffSeconds, places: 3),
            "deliver_file_msgs_per_s": rounded(deliverFileMessagesPerSecond, places: 0),
            "deliver_http_msgs_per_s": rounded(deliverHTTPMessagesPerSecond, places: 0),
            "peak_rss_mb": rounded(peakResidentMebibytes, places: 1),
            "db_bytes": databaseBytes.map(JSONValue.int) ?? .null,
            "sqlite_version": .string(Database.sqliteVersion),
            "seed": .int(seed),
            "stages": .array(stages.map(JSONValue.string)),
            "generate_s": rounded(generateSeconds, places: 3),
            "ingest_s": rounded(ingestSeconds, places: 3),
            "ingest": ingestSummary.map { summary in
                .object([
                    "accepted": .int(summary.accepted), "duplicates": .int(summary.duplicates),
                    "rejected": .int(summary.rejected), "anonymous": .int(summary.anonymous),
                    "lines": .int(summary.lines), "bytes": .int(summary.bytes),
                ])
            } ?? .null,
            "peak_rss_before_ingest_mb": rounded(peakResidentBeforeIngestMebibytes, places: 1),
            "build": .string(Self.build),
            "machine": ProcessFigures.machine,
        ])
    }

    static var build: String {
        #if DEBUG
            return "debug"
        #else
            return "release"
        #endif
    }

    /// `{"<key>": seconds, …, "total": sum}` or null.
    private func timings(_ entries: [(key: String, seconds: Double)]?) -> JSONValue {
        guard let entries else { return .null }
        var members = entries.map { JSONValue.Member($0.key, rounded($0.seconds, places: 3)) }
        members.append(JSONValue.Member("total", rounded(entries.reduce(0) { $0 + $1.seconds }, places: 3)))
        return .object(members)
    }

    private func rounded(_ value: Double?, places: Int) -> JSONValue {
        guard let value else { return .null }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return .double((value * scale).rounded() / scale)
    }
}
