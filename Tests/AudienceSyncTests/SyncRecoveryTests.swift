import Foundation
import Testing

@testable import AudienceSync

/// What survives an interrupted delivery, a permanent refusal, a second sync, and a dry run.
@Suite struct SyncRecoveryTests {
    @Test func aCrashMidDeliveryLosesNothingAndResendsTheSameMessageIds() async throws {
        let harness = try SyncHarness()
        try harness.ingest("events.ndjson")
        let crashing = RecordingDestination()
        crashing.crashAfter = 5
        let interrupted = try await harness.sync(now: demoNow, destination: crashing, batchSize: 2)
        #expect(interrupted.exitStatus == 1)
        #expect(crashing.acknowledged.count == 4)
        // The snapshot holds exactly what was acknowledged.
        let acknowledgedUsers = Set(crashing.acknowledged.map(\.userId))
        let snapshotRows = try harness.store.database.prepare("SELECT count(*) FROM snapshots").scalar()?.int64
        #expect(snapshotRows == 4)
        #expect(Set(try harness.snapshot("engaged_non_buyers").keys).isSubset(of: acknowledgedUsers))

        // The rerun (not due yet by schedule: the interrupted run never completed) finishes the work.
        let pendingIds = try harness.store.database.prepare(
            "SELECT message_id FROM outbox_states WHERE state = 'pending' ORDER BY id"
        ).rows().compactMap { $0[0].string }
        let rerun = RecordingDestination()
        let report = try await harness.sync(now: demoNow + 60_000, destination: rerun)
        #expect(report.exitStatus == 0)
        #expect(rerun.received.prefix(pendingIds.count).map(\.messageId) == pendingIds)
        // What the crashed batch half-delivered is re-sent with identical ids.
        let resent = Set(crashing.received.map(\.messageId)).subtracting(crashing.acknowledged.map(\.messageId))
        #expect(!resent.isEmpty && resent.isSubset(of: Set(pendingIds)))
        // Every change arrived at least once, and the snapshots are the full first sync.
        let all = Set((crashing.acknowledged + rerun.acknowledged).map(\.messageId))
        #expect(all.count == 25)
        #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_dev", "u_hana"])
        #expect(try harness.snapshot("order_completed_last_30days").count == 7)
        #expect(report.pairs.map(\.resumed).reduce(0, +) == 25 - 4)
    }

    @Test func aPermanentFailureStaysOutOfTheSnapshotAndIsSentAgain() async throws {
        let harness = try SyncHarness()
        try harness.ingest("events.ndjson")
        let refusing = RecordingDestination()
        refusing.refuse = ["u_dev"]
        let first = try await harness.sync(now: demoNow, definitions: ["nps_detractors"], destination: refusing)
        #expect(first.pairs[0].failed == 1 && first.pairs[0].sent == 2)
        #expect(first.exitStatus == 1)
        #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_hana"])
        let failedMessageId = try harness.store.database.prepare(
            "SELECT message_id FROM outbox_states WHERE state = 'failed'"
        ).scalar()?.string
        let again = RecordingDestination()
        let second = try await harness.sync(now: demoLater, definitions: ["nps_detractors"], destination: again)
        #expect(again.acknowledged.map(\.userId).contains("u_dev"))
        #expect(second.pairs[0].failed == 0)
        #expect(try harness.snapshot("nps_detractors")["u_dev"] == "true")
        // A new run made the change again: a new messageId (the refused one was never accepted).
        #expect(!again.acknowledged.map(\.messageId).contains(failedMessageId ?? ""))
    }

    @Test func theDryRunLeavesTheDatabaseFileByteIdentical() async throws {
        let harness = try SyncHarness()
        try harness.ingest("events.ndjson")
        _ = try await harness.sync(now: demoNow)
        try harness.ingest("events-later.ndjson", now: demoLater)
        // Leave pending work too, so the dry run reads the outbox.
        let crashing = RecordingDestination()
        crashing.crashAfter = 1
        _ = try await harness.sync(now: demoLater, destination: crashing, batchSize: 1)
        try harness.store.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let path = harness.configuration.databasePath
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let readOnly = try EventStore(path: path, mode: .readOnly)
        let engine = MembershipEngine(store: readOnly, definitions: harness.engine.definitions)
        let diff = try Syncer.dryRun(
            engine: engine, configuration: harness.configuration, selection: SyncSelection(destinations: ["outbox"]),
            now: demoLater)
        #expect(diff.pairs.map(\.counts.pending).reduce(0, +) == 6)
        #expect(diff.messages.count == 6)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func aSecondSyncLockFailsAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audiences.db")
        let first = try SyncLock(databasePath: path)
        #expect(throws: AudienceSyncError.self) { _ = try SyncLock(databasePath: path) }
        do {
            _ = try SyncLock(databasePath: path)
        } catch let error as AudienceSyncError {
            #expect(error.code == .locked && error.code.exitStatus == 3)
        }
        _ = first
        withExtendedLifetime(first) {}
    }

    @Test func theLockIsFreeAgainOnceReleased() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audiences.db")
        do { _ = try SyncLock(databasePath: path) }
        _ = try SyncLock(databasePath: path)
    }
}
