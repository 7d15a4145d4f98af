import Foundation
import Testing

@testable import AudienceSync

/// What survives an interrupted delivery, a permanent refusal, a second sync, and a dry run.
@Suite struct SyncRecoveryTests {
    @Test func aCrashMidDeliveryLosesNothingAndResendsTheSameMessageIds() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        let crashing = RecordingDestination()
        crashing.crashAfter = 5
        let interrupted = try await harness.sync(now: demoNow, destination: crashing, batchSize: 2)
        #expect(interrupted.hasFailures)
        #expect(crashing.acknowledged.count == 4)
        // The snapshot holds exactly what was acknowledged.
        let acknowledgedUsers = Set(crashing.acknowledged.map(\.userId))
        let snapshotRows = try await harness.scalar("SELECT count(*) FROM snapshots")?.int64
        #expect(snapshotRows == 4)
        await #expect(Set(try harness.snapshot("engaged_non_buyers").keys).isSubset(of: acknowledgedUsers))

        // The rerun (not due yet by schedule: the interrupted run never completed) finishes the work.
        let pendingIds = try await harness.rows("SELECT message_id FROM outbox_states WHERE state = 'pending' ORDER BY id").compactMap { $0[0].string }
        let rerun = RecordingDestination()
        let report = try await harness.sync(now: demoNow + 60_000, destination: rerun)
        #expect(!report.hasFailures)
        #expect(rerun.received.prefix(pendingIds.count).map(\.messageId) == pendingIds)
        // What the crashed batch half-delivered is re-sent with identical ids.
        let resent = Set(crashing.received.map(\.messageId)).subtracting(crashing.acknowledged.map(\.messageId))
        #expect(!resent.isEmpty && resent.isSubset(of: Set(pendingIds)))
        // Every change arrived at least once, and the snapshots are the full first sync.
        let all = Set((crashing.acknowledged + rerun.acknowledged).map(\.messageId))
        #expect(all.count == 25)
        await #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_dev", "u_hana"])
        await #expect(try harness.snapshot("order_completed_last_30days").count == 7)
        #expect(report.pairs.map(\.resumed).reduce(0, +) == 25 - 4)
    }

    @Test func aPermanentFailureStaysOutOfTheSnapshotAndIsSentAgain() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        let refusing = RecordingDestination()
        refusing.refuse = ["u_dev"]
        let first = try await harness.sync(now: demoNow, definitions: ["nps_detractors"], destination: refusing)
        #expect(first.pairs[0].failed == 1 && first.pairs[0].sent == 2)
        #expect(first.hasFailures)
        await #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_hana"])
        let failedMessageId = try await harness.scalar("SELECT message_id FROM outbox_states WHERE state = 'failed'")?.string
        let again = RecordingDestination()
        let second = try await harness.sync(now: demoLater, definitions: ["nps_detractors"], destination: again)
        #expect(again.acknowledged.map(\.userId).contains("u_dev"))
        #expect(second.pairs[0].failed == 0)
        await #expect(try harness.snapshot("nps_detractors")["u_dev"] == "true")
        // A new run made the change again: a new messageId (the refused one was never accepted).
        #expect(!again.acknowledged.map(\.messageId).contains(failedMessageId ?? ""))
    }

    @Test func theDryRunLeavesTheDatabaseFileByteIdentical() async throws {
        let harness = try await SyncHarness()
        try await harness.ingest("events.ndjson")
        _ = try await harness.sync(now: demoNow)
        try await harness.ingest("events-later.ndjson", now: demoLater)
        // Leave pending work too, so the dry run reads the outbox.
        let crashing = RecordingDestination()
        crashing.crashAfter = 1
        _ = try await harness.sync(now: demoLater, destination: crashing, batchSize: 1)
        try await harness.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let path = harness.configuration.databasePath
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let readOnly = try await SQLiteStore(path: path, access: .readOnly)
        let syncer = Syncer(
            store: readOnly, definitions: harness.engine.definitions, configuration: harness.configuration,
            logger: silentLogger)
        let diff = try await syncer.dryRun(SyncSelection(destinations: ["outbox"]), now: demoLater)
        #expect(diff.pairs.map(\.counts.pending).reduce(0, +) == 6)
        #expect(diff.messages.count == 6)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func aSecondSyncLockFailsAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audiences.db")
        let first = try SQLiteSyncLock(databasePath: path)
        #expect(throws: AudienceSyncError.self) { _ = try SQLiteSyncLock(databasePath: path) }
        do {
            _ = try SQLiteSyncLock(databasePath: path)
        } catch let error as AudienceSyncError {
            #expect(error.code == .locked)
        }
        _ = first
        withExtendedLifetime(first) {}
    }

    @Test func theLockIsFreeAgainOnceReleased() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audiences.db")
        do { _ = try SQLiteSyncLock(databasePath: path) }
        _ = try SQLiteSyncLock(databasePath: path)
    }
}
