import Foundation
import Testing

@testable import AudienceSync

/// Acknowledgement by delivery mark (schema 4): a batch the destination acknowledged whole moves
/// its pair's `outbox_marks.through_id` instead of rewriting each outbox row; the rows keep
/// 'pending' under the mark and read as delivered through `outbox_states` and every count.
@Suite struct OutboxMarkTests {
    let day: Int64 = 86_400_000

    /// The outbox rows that their pair's delivery mark covers.
    func underTheMark(_ harness: SyncHarness) async throws -> [SyncHarness.OutboxRow] {
        let marks = try await harness.marks()
        return try await harness.outbox().filter { $0.id <= marks[$0.pair] ?? 0 }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aBatchAcknowledgedWholeMovesTheMarkAndNothingReadsAsPending(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let report = try await harness.sync(now: demoNow, destination: RecordingDestination())
            let outbox = try await harness.outbox()
            let rows = outbox.count
            #expect(rows > 0 && report.pairs.map(\.sent).reduce(0, +) == rows)
            // The rows were not rewritten: their own state still says pending, the mark covers them.
            #expect(outbox.filter { $0.storedState == "pending" }.count == rows)
            await #expect(try underTheMark(harness).count == rows)
            #expect(outbox.filter { $0.state == "delivered" }.count == rows)
            let state = harness.store
            #expect(try await state.pendingPairs().isEmpty)
            for pair in report.pairs {
                #expect(try await state.pendingCount(PairName(key: pair.key, destination: pair.destination)) == 0)
            }
            let runs = try await harness.runs()
            #expect(runs.map(\.sent).reduce(0, +) == Int64(rows) && runs.map(\.failed).reduce(0, +) == 0)
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
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func failuresUnderTheMarkStayFailed(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let refusing = RecordingDestination()
            refusing.refuse = ["u_dev"]
            // Batches of two: the one with u_dev goes row by row, the others move the mark past it.
            _ = try await harness.sync(now: demoNow, destination: refusing, batchSize: 2)
            let outbox = try await harness.outbox()
            let failed = outbox.filter { $0.state == "failed" }
            #expect(!failed.isEmpty)
            #expect(failed.allSatisfy { $0.userId == "u_dev" })
            #expect(outbox.filter { $0.state == "delivered" }.count == refusing.acknowledged.count)
            let marks = try await harness.marks()
            #expect(failed.contains { $0.storedState == "failed" && $0.id < marks[$0.pair] ?? 0 })
            #expect(try await harness.store.pendingPairs().isEmpty)
        }
    }

    /// Old delivered rows are pruned after a week, but never the newest row: were the outbox's
    /// largest id deleted, SQLite would give new rows ids at or under a mark, and they would read
    /// as delivered without ever being sent (PostgreSQL's ids come from a sequence, which never
    /// goes back).
    @Test(arguments: StoreKind.keepingSyncState)
    func rowsWrittenAfterPruningAreNeverCoveredByAnOldMark(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow, destination: RecordingDestination())
            let highestMark = try #require(try await harness.marks().values.max())
            #expect(highestMark == Int64(try await harness.outbox().count))

            // Eight days later everything of the first sync is old enough to prune; the destination
            // fails before acknowledging anything, so every new message must stay pending.
            let crashing = RecordingDestination()
            crashing.crashAfter = 0
            let later = demoNow + 8 * day
            _ = try await harness.sync(now: later, force: true, destination: crashing)
            let runs = try await harness.runs()
            let firstRuns = Set(runs.filter { $0.startedAt == demoNow }.map(\.id))
            let laterRuns = Set(runs.filter { $0.startedAt == later }.map(\.id))
            let outbox = try await harness.outbox()
            #expect(outbox.filter { firstRuns.contains($0.runId) }.count == 1)
            let newRows = outbox.filter { laterRuns.contains($0.runId) }
            #expect(!newRows.isEmpty)
            #expect(newRows.allSatisfy { $0.id > highestMark })
            #expect(outbox.filter { $0.state == "pending" } == newRows)

            // The next run delivers exactly them.
            let rerun = RecordingDestination()
            let report = try await harness.sync(now: later + 60_000, destination: rerun)
            #expect(rerun.received.map(\.messageId) == newRows.map(\.messageId))
            #expect(report.pairs.map(\.resumed).reduce(0, +) == newRows.count)
            await #expect(try harness.outbox().filter { $0.state == "pending" }.isEmpty)
        }
    }
}
