import AudienceSync
import Foundation
import Logging
import LoopbackReceiver

/// The diff and deliver stages, on a store of their own (`sync.sqlite3` in the work folder).
///
/// The store holds one `Bench Diff` event for each of `diffMembers` users and one `Bench Deliver`
/// event for each of `deliverMessages` users, written with SQL (the same rows ingest would store,
/// minus the message JSON the definitions below never read). Two audiences select them:
/// `bench_diff` (synced to `diff_file`) and `bench_deliver` (synced to `deliver_file` and to
/// `deliver_segment`, the Segment-compatible receiver the harness starts on 127.0.0.1).
struct SyncRun {
    var workFolder: WorkFolder
    var now: Int64
    var diffMembers: Int
    var deliverMessages: Int
    var httpConcurrency: Int

    static let timedRuns = 3

    var databasePath: String { workFolder.file("sync.sqlite3") }

    /// Writes the configuration, the definitions and the events; returns the configuration's path.
    func prepare(diff: Bool, deliver: Bool, port: Int) async throws -> String {
        let started = ContinuousClock.now
        try? FileManager.default.removeItem(atPath: databasePath)
        let audiences = workFolder.file("sync-audiences")
        try FileManager.default.createDirectory(atPath: audiences, withIntermediateDirectories: true)
        let writeKeyFile = workFolder.file("segment-write-key")
        try "bench-write-key\n".write(toFile: writeKeyFile, atomically: true, encoding: .utf8)
        let configurationPath = workFolder.file("sync.yml")
        try """
        database: sync.sqlite3
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
        // JSON the definitions below never read.
        let store = try await SQLiteStore(path: databasePath)
        func execute(_ sql: String, _ binds: [SQLValue] = []) async throws {
            _ = try await store.rows(CompiledQuery(sql: sql, binds: binds))
        }
        try await execute("PRAGMA synchronous = OFF")
        let insert = """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
            INSERT INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, message)
            SELECT ?2 || i, 'track', printf('u%08d', i), NULL, ?3, ?4 - i, ?4, '{}' FROM n
            """
        if diff {
            try await execute(insert, [.integer(Int64(diffMembers)), .text("d"), .text("Bench Diff"), .integer(now)])
            // The snapshot differs by 10%: every 20th member is missing, and as many users
            // who are not members are in it.
            try await execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                INSERT INTO snapshots (key, destination, user_id, value)
                SELECT 'bench_diff', 'diff_file', printf('u%08d', i), 'true' FROM n WHERE i % 20 <> 0
                UNION ALL
                SELECT 'bench_diff', 'diff_file', printf('x%08d', i), 'true' FROM n WHERE i % 20 = 0
                """, [.integer(Int64(diffMembers))])
            try await execute(
                "INSERT INTO pairs (key, destination, last_synced_at) VALUES (?1, ?2, ?3)",
                [.text("bench_diff"), .text("diff_file"), .integer(now - 3_600_000)])
        }
        if deliver {
            try await execute(insert, [.integer(Int64(deliverMessages)), .text("s"), .text("Bench Deliver"), .integer(now)])
        }
        try await execute("PRAGMA synchronous = FULL")
        // A store in use is checkpointed as it goes; this one was written with few commits, which
        // leaves it all in the WAL, where every read would have to look it up.
        try await execute("PRAGMA wal_checkpoint(TRUNCATE)")
        Progress.note("sync store: built in \(format(ContinuousClock.now - started)) s (\(databasePath))")
        return configurationPath
    }

    /// `diff_s`: the dry run of the `bench_diff` → `diff_file` pair, the fastest of three after a warm-up.
    func measureDiff(configurationPath: String, into report: inout BenchReport) async throws {
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: workFolder.file("sync-audiences"), configuration: configuration)
        let store = try await SQLiteStore(path: databasePath, access: .readOnly)
        let syncer = Syncer(store: store, definitions: definitions, configuration: configuration, logger: SQLiteStore.silentLogger)
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
    /// outbox written) to the last batch's transaction.
    func measureDeliver(configurationPath: String, receiver: LoopbackReceiver, into report: inout BenchReport) async throws {
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: workFolder.file("sync-audiences"), configuration: configuration)
        let store = try await SQLiteStore(path: databasePath)
        var logger = Logger(label: "audience-sync-bench")
        logger.logLevel = .warning
        for destination in ["deliver_file", "deliver_segment"] {
            let rssBefore = ProcessFigures.peakResidentMebibytes()
            var syncer = Syncer(store: store, definitions: definitions, configuration: configuration, logger: logger)
            let timer = DeliveryTimer()
            syncer.progress = { progress in timer.mark(done: progress.done) }
            let started = ContinuousClock.now
            let result = try await syncer.sync(
                SyncSelection(definitions: ["bench_deliver"], destinations: [destination], force: true), now: now)
            let total = seconds(ContinuousClock.now - started)
            guard let pair = result.pairs.first, pair.sent == deliverMessages, pair.failed == 0, pair.pending == 0 else {
                throw AudienceSyncError(
                    .delivery, "deliver: \(destination): expected \(deliverMessages) messages sent, got \(ReportJSON.encode(result))")
            }
            let deliverySeconds = timer.seconds
            let rate = Double(pair.sent) / deliverySeconds
            var line =
                "deliver: \(destination): \(pair.sent) messages delivered in \(format(deliverySeconds)) s "
                + "(\(Int(rate)) msgs/s; the whole sync, diff and outbox included, \(format(total)) s); "
                + "peak RSS \(format(rssBefore)) → \(format(ProcessFigures.peakResidentMebibytes())) MiB"
            if destination == "deliver_file" {
                report.deliverFileMessagesPerSecond = rate
                report.deliverFileSyncSeconds = total
            } else {
                let counted = receiver.acknowledgedMessageCount
                guard counted == deliverMessages else {
                    throw AudienceSyncError(
                        .delivery, "deliver: the receiver counted \(counted) messages, expected \(deliverMessages)")
                }
                line += "; the receiver counted \(counted) messages in \(receiver.requestCount) requests"
                report.deliverHTTPMessagesPerSecond = rate
                report.deliverHTTPSyncSeconds = total
                report.deliverHTTPRequests = receiver.requestCount
            }
            Progress.note(line)
        }
        report.deliverMessages = deliverMessages
        try? FileManager.default.removeItem(atPath: workFolder.file("deliver.ndjson"))
    }

    private func seconds(_ duration: Swift.Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func format(_ duration: Swift.Duration) -> String { format(seconds(duration)) }
    private func format(_ value: Double) -> String { String(format: "%.3f", value) }
}

/// The delivery's span, from the syncer's progress calls (made on the syncing task): the first
/// (0 done) to the last.
private final class DeliveryTimer {
    private var first: ContinuousClock.Instant?
    private var last: ContinuousClock.Instant?

    func mark(done: Int) {
        let instant = ContinuousClock.now
        if first == nil { first = instant }
        last = instant
    }

    var seconds: Double {
        guard let first, let last else { return .nan }
        let duration: Swift.Duration = last - first
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
