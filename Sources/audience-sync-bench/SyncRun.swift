import AudienceSync
import Foundation
import Logging
import LoopbackReceiver

/// The diff and deliver stages, on a store of their own: `sync.sqlite3` in the work folder, or,
/// with `--store`, a schema of that PostgreSQL database (`<--store-schema>_sync`, so that the
/// ingest's schema is left as it is). Both are the product's stores behind the same seam: the
/// stages run the real `Syncer` on `any Store`, whichever it is.
///
/// The store holds one `Bench Diff` event for each of `diffMembers` users and one `Bench Deliver`
/// event for each of `deliverMessages` users, written with SQL (the same rows ingest would store,
/// minus the message JSON the definitions below never read). Two audiences select them:
/// `bench_diff` (synced to `diff_file`) and `bench_deliver` (synced to `deliver_file` and to
/// `deliver_segment`, the Segment-compatible receiver the harness starts on 127.0.0.1).
struct SyncRun {
    var workFolder: WorkFolder
    /// `sync.sqlite3` in the work folder (`sqlitePath`), or a PostgreSQL schema.
    var location: StoreLocation
    /// The configuration's `database:` (and `database_schema:`) lines for `location`.
    var databaseSettings: String
    var now: Int64
    var diffMembers: Int
    var deliverMessages: Int
    var httpConcurrency: Int

    static let timedRuns = 3

    /// The SQLite sync store of `workFolder` (the serve stage's too).
    static func sqlitePath(_ workFolder: WorkFolder) -> String { workFolder.file("sync.sqlite3") }

    /// The sync store: `--store`'s database in a schema of its own, `<schema>_sync`, else the SQLite file.
    init(
        workFolder: WorkFolder, storeURL: String? = nil, storeSchema: String = "", now: Int64, diffMembers: Int,
        deliverMessages: Int, httpConcurrency: Int
    ) throws {
        self.workFolder = workFolder
        if let storeURL {
            let schema = Self.syncSchema(storeSchema)
            location = .postgres(try PostgresLocation(url: storeURL, schema: schema))
            databaseSettings = "database: \(storeURL)\ndatabase_schema: \(schema)"
        } else {
            location = .sqlite(path: Self.sqlitePath(workFolder))
            databaseSettings = "database: sync.sqlite3"
        }
        self.now = now
        self.diffMembers = diffMembers
        self.deliverMessages = deliverMessages
        self.httpConcurrency = httpConcurrency
    }

    /// The schema the diff and deliver stages use beside `--store-schema`.
    static func syncSchema(_ storeSchema: String) -> String { storeSchema + "_sync" }

    /// Writes the configuration, the definitions and the events; returns the configuration's path.
    func prepare(diff: Bool, deliver: Bool, port: Int) async throws -> String {
        let started = ContinuousClock.now
        try await location.removeAll()
        let audiences = workFolder.file("sync-audiences")
        try FileManager.default.createDirectory(atPath: audiences, withIntermediateDirectories: true)
        let writeKeyFile = workFolder.file("segment-write-key")
        try "bench-write-key\n".write(toFile: writeKeyFile, atomically: true, encoding: .utf8)
        let configurationPath = workFolder.file("sync.yml")
        try """
        \(databaseSettings)
        definitions: sync-audiences
        schedule: 1h
        space_id: spa_bench
        destinations:
          - name: diff_file
            type: file
            path: diff.ndjson
          - name: deliver_file
            type: file
            path: deliver.ndjson
          - name: deliver_segment
            type: segment
            write_key: file:\(writeKeyFile)
            endpoint: http://127.0.0.1:\(port)/v1/batch
            concurrency: \(httpConcurrency)
            rate_limit: 100000
        """.write(toFile: configurationPath, atomically: true, encoding: .utf8)
        try """
        name: Bench Diff
        condition:
          performed: Bench Diff
        destinations: [diff_file]
        """.write(toFile: (audiences as NSString).appendingPathComponent("bench_diff.yml"), atomically: true, encoding: .utf8)
        try """
        name: Bench Deliver
        condition:
          performed: Bench Deliver
        destinations: [deliver_file, deliver_segment]
        """.write(
            toFile: (audiences as NSString).appendingPathComponent("bench_deliver.yml"), atomically: true,
            encoding: .utf8)

        // The rows are written with SQL through the store's query runner (each statement its own
        // transaction), not through ingest: the same rows ingest would store, minus the message
        // JSON the definitions below never read. The SQL is the same on both stores, but for the
        // placeholders: a recursive count, and `u00000001` spelt without printf or lpad.
        try await location.withStore(access: .readWrite, logger: SQLiteStore.silentLogger) { store in
            let bind = store.dialect.placeholder
            func execute(_ sql: String, _ binds: [SQLValue] = []) async throws {
                _ = try await store.rows(CompiledQuery(sql: sql, binds: binds))
            }
            let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(bind(1)))"
            func user(_ prefix: String) -> String { "'\(prefix)' || substr(CAST(100000000 + i AS text), 2)" }
            if case .sqlite = location { try await execute("PRAGMA synchronous = OFF") }
            let insert = """
                \(numbers)
                INSERT INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, message)
                SELECT \(bind(2)) || i, 'track', \(user("u")), NULL, \(bind(3)), \(bind(4)) - i, \(bind(4)), '{}' FROM n
                """
            if diff {
                try await execute(insert, [.integer(Int64(diffMembers)), .text("d"), .text("Bench Diff"), .integer(now)])
                // The snapshot differs by 10%: every 20th member is missing, and as many users
                // who are not members are in it.
                try await execute(
                    """
                    \(numbers)
                    INSERT INTO snapshots (key, destination, user_id, value)
                    SELECT 'bench_diff', 'diff_file', \(user("u")), 'true' FROM n WHERE i % 20 <> 0
                    UNION ALL
                    SELECT 'bench_diff', 'diff_file', \(user("x")), 'true' FROM n WHERE i % 20 = 0
                    """, [.integer(Int64(diffMembers))])
                try await execute(
                    "INSERT INTO pairs (key, destination, last_synced_at) VALUES (\(bind(1)), \(bind(2)), \(bind(3)))",
                    [.text("bench_diff"), .text("diff_file"), .integer(now - 3_600_000)])
            }
            if deliver {
                try await execute(insert, [.integer(Int64(deliverMessages)), .text("s"), .text("Bench Deliver"), .integer(now)])
            }
            switch location {
            case .sqlite:
                try await execute("PRAGMA synchronous = FULL")
                // A store in use is checkpointed as it goes; this one was written with few commits,
                // which leaves it all in the WAL, where every read would have to look it up.
                try await execute("PRAGMA wal_checkpoint(TRUNCATE)")
            case .postgres:
                // A store in use is vacuumed and analyzed by autovacuum soon after a bulk insert;
                // without it the first reads would set every row's hint bits (writing the tables)
                // and the planner would know nothing of the new rows.
                try await execute("VACUUM (ANALYZE) events")
                try await execute("VACUUM (ANALYZE) snapshots")
            }
        }
        Progress.note("sync store: built in \(format(ContinuousClock.now - started)) s (\(location.place))")
        return configurationPath
    }

    /// `diff_s`: the dry run of the `bench_diff` → `diff_file` pair, the fastest of three after a warm-up.
    func measureDiff(configurationPath: String, into report: inout BenchReport) async throws {
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: workFolder.file("sync-audiences"), configuration: configuration)
        try await location.withStore(access: .readOnly, logger: SQLiteStore.silentLogger) { store in
            try await measureDiff(
                Syncer(store: store, definitions: definitions, configuration: configuration, logger: SQLiteStore.silentLogger),
                into: &report)
        }
    }

    private func measureDiff(_ syncer: Syncer, into report: inout BenchReport) async throws {
        let engine = syncer.engine
        let selection = SyncSelection(definitions: ["bench_diff"], destinations: ["diff_file"])
        var best = Double.infinity
        var pair: DiffReport.Pair?
        for run in 0...Self.timedRuns {
            let started = ContinuousClock.now
            let result = try await syncer.dryRun(selection, now: now, messages: .count)
            let seconds = seconds(ContinuousClock.now - started)
            if run > 0 { best = min(best, seconds) }
            pair = result.pairs.first
        }
        guard let pair else { throw AudienceSyncError(.usage, "diff: the bench pair was not diffed") }
        var computeBest = Double.infinity
        for run in 0...Self.timedRuns {
            let started = ContinuousClock.now
            let members = try await engine.members(key: "bench_diff", now: now)
            if run > 0 { computeBest = min(computeBest, seconds(ContinuousClock.now - started)) }
            guard members.count == diffMembers else {
                throw AudienceSyncError(.usage, "diff: expected \(diffMembers) members, computed \(members.count)")
            }
        }
        report.diffComputeSeconds = computeBest
        let churn = diffMembers / 20
        guard pair.counts.members == diffMembers, pair.counts.entered == churn, pair.counts.exited == churn,
            pair.counts.synced == diffMembers
        else {
            throw AudienceSyncError(
                .usage,
                "diff: expected \(diffMembers) members, \(churn) entered and \(churn) exited; got "
                    + "\(pair.counts.members), \(pair.counts.entered) and \(pair.counts.exited)")
        }
        report.diffSeconds = best
        report.diffCounts = pair.counts
        Progress.note(
            "diff: \(pair.counts.members) members against a snapshot of \(pair.counts.synced): "
                + "\(pair.counts.entered) entered, \(pair.counts.exited) exited, in \(format(best)) s (best of \(Self.timedRuns)); "
                + "computing the members alone takes \(format(computeBest)) s")
    }

    /// `deliver_file_msgs_per_s` and `deliver_http_msgs_per_s`: a real first sync of `bench_deliver`
    /// to each destination; the figure is messages over the time from the start of delivery (the
    /// outbox written) to the last batch's transaction. The whole first sync is timed too, and its
    /// parts: the diff (to the syncer's "pair diffed" line), the outbox write (to the first
    /// progress call) and the delivery.
    func measureDeliver(configurationPath: String, receiver: LoopbackReceiver, into report: inout BenchReport) async throws {
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: workFolder.file("sync-audiences"), configuration: configuration)
        try await location.withStore(access: .readWrite, logger: SQLiteStore.silentLogger) { store in
            for destination in ["deliver_file", "deliver_segment"] {
                let sync = try await firstSync(of: destination, on: store, definitions: definitions, configuration: configuration)
                let rate = Double(deliverMessages) / sync.delivery
                var line =
                    "deliver: \(destination): \(deliverMessages) messages delivered in \(format(sync.delivery)) s "
                    + "(\(Int(rate)) msgs/s); the whole first sync \(format(sync.total)) s: diff \(format(sync.diff)) s, "
                    + "outbox written \(format(sync.outbox)) s, delivery \(format(sync.delivery)) s; "
                    + "peak RSS \(format(sync.rssBefore)) → \(format(ProcessFigures.peakResidentMebibytes())) MiB"
                if destination == "deliver_file" {
                    report.deliverFileMessagesPerSecond = rate
                    report.deliverFileSync = sync
                } else {
                    let counted = receiver.acknowledgedMessageCount
                    guard counted == deliverMessages else {
                        throw AudienceSyncError(
                            .delivery, "deliver: the receiver counted \(counted) messages, expected \(deliverMessages)")
                    }
                    line += "; the receiver counted \(counted) messages in \(receiver.requestCount) requests"
                    report.deliverHTTPMessagesPerSecond = rate
                    report.deliverHTTPSync = sync
                    report.deliverHTTPRequests = receiver.requestCount
                }
                Progress.note(line)
            }
        }
        report.deliverMessages = deliverMessages
        try? FileManager.default.removeItem(atPath: workFolder.file("deliver.ndjson"))
    }

    /// A first sync (`--force`) of `bench_deliver` to `destination`, checked to have sent every message.
    private func firstSync(
        of destination: String, on store: any Store, definitions: DefinitionSet, configuration: Configuration
    ) async throws -> FirstSyncTimes {
        let rssBefore = ProcessFigures.peakResidentMebibytes()
        let sync = try await TimedSync.run(
            on: store, definitions: definitions, configuration: configuration, destination: destination, now: now)
        guard let pair = sync.result.pairs.first, pair.sent == deliverMessages, pair.failed == 0, pair.pending == 0 else {
            throw AudienceSyncError(
                .delivery,
                "deliver: \(destination): expected \(deliverMessages) messages sent, got \(ReportJSON.encode(sync.result))")
        }
        guard let diffedAt = sync.diffedAt, let first = sync.deliveringAt, let last = sync.deliveredAt else {
            throw AudienceSyncError(.delivery, "deliver: \(destination): the sync's diff and delivery were not timed")
        }
        func span(_ from: UInt64, _ to: UInt64) -> Double { Double(to &- from) / 1e9 }
        return FirstSyncTimes(
            total: span(sync.startedAt, sync.endedAt), diff: span(sync.startedAt, diffedAt), outbox: span(diffedAt, first),
            delivery: span(first, last), rssBefore: rssBefore)
    }

    private func seconds(_ duration: Swift.Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func format(_ duration: Swift.Duration) -> String { format(seconds(duration)) }
    private func format(_ value: Double) -> String { String(format: "%.3f", value) }
}

/// A first sync's seconds: the whole sync, its diff, writing its outbox, and its delivery (from
/// the first progress call to the last); the peak resident set before it.
struct FirstSyncTimes {
    var total: Double
    var diff: Double
    var outbox: Double
    var delivery: Double
    var rssBefore: Double
}

/// A first sync (`--force`) of `bench_deliver` to one destination, as the deliver and serve stages
/// run it, with its moments (`LoadDriver.now()`): started, diffed (the syncer's debug line "pair
/// diffed": the diff, read-only, is over and the outbox write begins), delivering and delivered
/// (its first and last progress calls: the outbox written; the last batch recorded), ended.
struct TimedSync {
    var result: SyncReport
    var startedAt: UInt64
    var diffedAt: UInt64?
    var deliveringAt: UInt64?
    var deliveredAt: UInt64?
    var endedAt: UInt64

    static func run(
        on store: any Store, definitions: DefinitionSet, configuration: Configuration, destination: String, now: Int64
    ) async throws -> TimedSync {
        let diffed = DeliveryMarks()
        var logger = Logger(label: "audience-sync-bench") { _ in DiffMarkLogHandler(marks: diffed) }
        logger.logLevel = .debug
        var syncer = Syncer(store: store, definitions: definitions, configuration: configuration, logger: logger)
        let delivering = DeliveryMarks()
        syncer.progress = { _ in delivering.mark() }
        let startedAt = LoadDriver.now()
        let result = try await syncer.sync(
            SyncSelection(definitions: ["bench_deliver"], destinations: [destination], force: true), now: now)
        let endedAt = LoadDriver.now()
        let marks = delivering.marks
        return TimedSync(
            result: result, startedAt: startedAt, diffedAt: diffed.marks.first, deliveringAt: marks.first,
            deliveredAt: marks.last, endedAt: endedAt)
    }
}
