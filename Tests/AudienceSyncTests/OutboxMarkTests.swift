import Foundation
import Testing

@testable import AudienceSync

/// Acknowledgement by delivery mark (schema 4): a batch the destination acknowledged whole moves
/// its pair's `outbox_marks.through_id` instead of rewriting each outbox row; the rows keep
/// 'pending' under the mark and read as delivered through `outbox_states` and every count.
@Suite struct OutboxMarkTests {
    let day: Int64 = 86_400_000

    func count(_ harness: SyncHarness, _ sql: String) async throws -> Int {
        Int(try await harness.scalar(sql)?.int64 ?? -1)
    }

    @Test func aBatchAcknowledgedWholeMovesTheMarkAndNothingReadsAsPending() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        let report = try await harness.sync(now: demoNow, destination: RecordingDestination())
        let database = harness
        let rows = try await count(database, "SELECT count(*) FROM outbox")
        #expect(rows > 0 && report.pairs.map(\.sent).reduce(0, +) == rows)
        // The rows were not rewritten: their own state still says pending, the mark covers them.
        await #expect(try count(database, "SELECT count(*) FROM outbox WHERE state = 'pending'") == rows)
        await #expect(
            try count(
                database,
                """
                SELECT count(*) FROM outbox o JOIN outbox_marks m ON m.key = o.key AND m.destination = o.destination
                WHERE o.id <= m.through_id
                """) == rows)
        await #expect(try count(database, "SELECT count(*) FROM outbox_states WHERE state = 'delivered'") == rows)
        let state = harness.store
        #expect(try await state.pendingPairs().isEmpty)
        for pair in report.pairs {
            #expect(try await state.pendingCount(PairName(key: pair.key, destination: pair.destination)) == 0)
        }
        #expect(try await harness.rows("SELECT sum(sent), sum(failed) FROM runs").first == [.integer(Int64(rows)), .integer(0)])
        let status = try await SyncStatus.load(
            engine: harness.engine, state: harness.store, configuration: harness.configuration, now: demoNow)
        #expect(status.pairs.allSatisfy { $0.pending == 0 })
        // The dry run lays no delivered row over the snapshot as pending work.
        let dry = try await harness.syncer().dryRun(
            SyncSelection(destinations: ["outbox"], force: true), now: demoNow + 60_000)
        #expect(!dry.pairs.isEmpty && dry.pairs.allSatisfy { $0.counts.pending == 0 })
        // Nothing is sent again.
        let again = RecordingDestination()
        _ = try await harness.sync(now: demoNow + 60_000, force: true, destination: again)
        #expect(again.received.isEmpty)
    }

    @Test func failuresUnderTheMarkStayFailed() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        let refusing = RecordingDestination()
        refusing.refuse = ["u_dev"]
        // Batches of two: the one with u_dev goes row by row, the others move the mark past it.
        _ = try await harness.sync(now: demoNow, destination: refusing, batchSize: 2)
        let database = harness
        let failed = try await count(database, "SELECT count(*) FROM outbox_states WHERE state = 'failed'")
        #expect(failed > 0)
        let failedForUDev = try await count(database, "SELECT count(*) FROM outbox_states WHERE state = 'failed' AND user_id = 'u_dev'")
        #expect(failed == failedForUDev)
        await #expect(
            try count(database, "SELECT count(*) FROM outbox_states WHERE state = 'delivered'")
                == refusing.acknowledged.count)
        await #expect(
            try count(
                database,
                """
                SELECT count(*) FROM outbox o JOIN outbox_marks m ON m.key = o.key AND m.destination = o.destination
                WHERE o.state = 'failed' AND o.id < m.through_id
                """) > 0)
        #expect(try await harness.store.pendingPairs().isEmpty)
    }

    /// Old delivered rows are pruned after a week, but never the newest row: were the outbox's
    /// largest id deleted, SQLite would give new rows ids at or under a mark, and they would read
    /// as delivered without ever being sent.
    @Test func rowsWrittenAfterPruningAreNeverCoveredByAnOldMark() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        _ = try await harness.sync(now: demoNow, destination: RecordingDestination())
        let database = harness
        let highestMark = try await count(database, "SELECT max(through_id) FROM outbox_marks")
        let firstRows = try await count(database, "SELECT count(*) FROM outbox")
        #expect(highestMark == firstRows)

        // Eight days later everything of the first sync is old enough to prune; the destination
        // fails before acknowledging anything, so every new message must stay pending.
        let crashing = RecordingDestination()
        crashing.crashAfter = 0
        let later = demoNow + 8 * day
        _ = try await harness.sync(now: later, force: true, destination: crashing)
        await #expect(try count(database, "SELECT count(*) FROM outbox WHERE run_id IN (SELECT id FROM runs WHERE started_at = \(demoNow))") == 1)
        let newRows = try await count(database, "SELECT count(*) FROM outbox WHERE run_id IN (SELECT id FROM runs WHERE started_at = \(later))")
        #expect(newRows > 0)
        await #expect(try count(database, "SELECT min(id) FROM outbox WHERE run_id IN (SELECT id FROM runs WHERE started_at = \(later))") > highestMark)
        await #expect(try count(database, "SELECT count(*) FROM outbox_states WHERE state = 'pending'") == newRows)

        // The next run delivers exactly them.
        let rerun = RecordingDestination()
        let report = try await harness.sync(now: later + 60_000, destination: rerun)
        #expect(rerun.received.count == newRows)
        #expect(report.pairs.map(\.resumed).reduce(0, +) == newRows)
        await #expect(try count(database, "SELECT count(*) FROM outbox_states WHERE state = 'pending'") == 0)
    }
}
