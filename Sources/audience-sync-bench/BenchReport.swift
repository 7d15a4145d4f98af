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
    /// Members (audiences) or users with a value (computed traits), per definition key.
    var computeRows: [(key: String, count: Int)]?
    /// True when every baseline gave exactly the engine's result (a mismatch stops the run).
    var baselineMatches: Bool?
    /// The peak resident set when the compute stage starts; `peak_rss_mb` above it is compute's.
    var peakResidentBeforeComputeMebibytes: Double?
    var diffSeconds: Double?
    var deliverFileMessagesPerSecond: Double?
    var deliverHTTPMessagesPerSecond: Double?
    /// The diff stage's counts (members, synced, entered, exited).
    var diffCounts: PairCounts?
    /// Of `diffSeconds`, the membership computation alone: the audience's statement stepped to
    /// the end (best of three); the rest is the diff itself and building its messages.
    var diffComputeSeconds: Double?
    /// Messages the deliver stage sent to each destination.
    var deliverMessages: Int?
    /// The whole first sync (diff, outbox, delivery) to each destination, and its parts.
    var deliverFileSync: FirstSyncTimes?
    var deliverHTTPSync: FirstSyncTimes?
    /// Batch requests the loopback receiver answered.
    var deliverHTTPRequests: Int?
    /// Events per second stored through `/v1/batch` (the best connection count), each request
    /// answered after its commit.
    var serveBatchEventsPerSecond: Double?
    /// Single-message `/v1/track` requests per second.
    var serveTrackRequestsPerSecond: Double?
    /// The p99 latency at the steady rate, from each request's scheduled send time.
    var serveSteadyP99Milliseconds: Double?
    /// The same at the lower rate while a first sync writes to the store, and the 503s.
    var serveDuringSyncP99Milliseconds: Double?
    var serveDuringSyncRefused: Int?
    /// The server process's peak resident set (`VmHWM`).
    var servePeakResidentMebibytes: Double?
    /// Every phase of the serve stage (`ServeDetail`).
    var serveDetail: JSONValue?
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
    /// The store the stages ran on: `sqlite` or `postgresql`.
    var store = "sqlite"
    /// For PostgreSQL, the server's version and settings that bear on the figures; else null.
    var storeSettings: JSONValue = .null

    init(users: Int, events: Int, seed: UInt64) {
        self.users = users
        self.events = events
        self.seed = seed
    }

    var json: JSONValue {
        .object(contractFigures + serveFigures + details)
    }

    /// The stages' main figures before the serve stage's.
    private var contractFigures: [JSONValue.Member] {
        members([
            "users": .int(users),
            "events": .int(events),
            "ingest_events_per_s": rounded(ingestEventsPerSecond, places: 0),
            "compute_s": timings(computeSeconds),
            "baseline_sql_s": timings(baselineSQLSeconds),
            "diff_s": rounded(diffSeconds, places: 3),
            "deliver_file_msgs_per_s": rounded(deliverFileMessagesPerSecond, places: 0),
            "deliver_http_msgs_per_s": rounded(deliverHTTPMessagesPerSecond, places: 0),
        ])
    }

    /// The serve stage's figures (SPEC §11's targets).
    private var serveFigures: [JSONValue.Member] {
        members([
            "serve_batch_events_per_s": rounded(serveBatchEventsPerSecond, places: 0),
            "serve_track_requests_per_s": rounded(serveTrackRequestsPerSecond, places: 0),
            "serve_p99_ms_at_2000_rps": rounded(serveSteadyP99Milliseconds, places: 2),
            "serve_during_sync_p99_ms": rounded(serveDuringSyncP99Milliseconds, places: 2),
            "serve_during_sync_refused": serveDuringSyncRefused.map(JSONValue.int) ?? .null,
            "serve_peak_rss_mb": rounded(servePeakResidentMebibytes, places: 1),
        ])
    }

    /// The whole process, the arguments and each stage's details.
    private var details: [JSONValue.Member] {
        members([
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
            "compute_rows": computeRows.map { rows in .object(rows.map { JSONValue.Member($0.key, .int($0.count)) }) }
                ?? .null,
            "compute_vs_baseline": rounded(computeVersusBaseline, places: 2),
            "compute_vs_baseline_by_key": computeVersusBaselineByKey.map { ratios in
                .object(ratios.map { JSONValue.Member($0.key, rounded($0.ratio, places: 2)) })
            } ?? .null,
            "baseline_matches": baselineMatches.map(JSONValue.bool) ?? .null,
            "peak_rss_before_compute_mb": rounded(peakResidentBeforeComputeMebibytes, places: 1),
            "diff": diffDetail,
            "deliver": deliverDetail,
            "serve": serveDetail ?? .null,
            "build": .string(Self.build),
            "machine": ProcessFigures.machine,
            "store": .string(store),
            "postgres_settings": storeSettings,
        ])
    }

    private func members(_ pairs: KeyValuePairs<String, JSONValue>) -> [JSONValue.Member] {
        pairs.map { JSONValue.Member($0.key, $0.value) }
    }

    /// The diff stage's counts and how much of its time computing the members took.
    var diffDetail: JSONValue {
        guard let counts = diffCounts else { return .null }
        return .object([
            "members": .int(counts.members), "synced": .int(counts.synced), "entered": .int(counts.entered),
            "exited": .int(counts.exited), "unchanged": .int(counts.unchanged),
            "compute_s": rounded(diffComputeSeconds, places: 3),
        ])
    }

    /// The deliver stage's message count, whole-sync times with their parts, and HTTP request count.
    var deliverDetail: JSONValue {
        guard let deliverMessages else { return .null }
        let requests: JSONValue = deliverHTTPRequests.map { .int($0) } ?? .null
        func parts(_ sync: FirstSyncTimes?) -> JSONValue {
            guard let sync else { return .null }
            return .object([
                "diff": rounded(sync.diff, places: 3), "outbox": rounded(sync.outbox, places: 3),
                "delivery": rounded(sync.delivery, places: 3),
            ])
        }
        return .object([
            "messages": .int(deliverMessages),
            "file_sync_s": rounded(deliverFileSync?.total, places: 3),
            "http_sync_s": rounded(deliverHTTPSync?.total, places: 3),
            "http_requests": requests,
            "file_sync_parts_s": parts(deliverFileSync),
            "http_sync_parts_s": parts(deliverHTTPSync),
        ])
    }

    /// Engine seconds over baseline seconds for each key that has a baseline.
    var computeVersusBaselineByKey: [(key: String, ratio: Double)]? {
        guard let computeSeconds, let baselineSQLSeconds else { return nil }
        return baselineSQLSeconds.compactMap { baseline in
            guard let compute = computeSeconds.first(where: { $0.key == baseline.key }), baseline.seconds > 0 else {
                return nil
            }
            return (baseline.key, compute.seconds / baseline.seconds)
        }
    }

    /// The engine's total over the baseline's total, on the keys that have a baseline.
    var computeVersusBaseline: Double? {
        guard let computeSeconds, let baselineSQLSeconds else { return nil }
        let keys = Set(baselineSQLSeconds.map(\.key))
        let compute = computeSeconds.filter { keys.contains($0.key) }.reduce(0) { $0 + $1.seconds }
        let baseline = baselineSQLSeconds.reduce(0) { $0 + $1.seconds }
        return baseline > 0 ? compute / baseline : nil
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
