import Foundation
import Testing

@testable import AudienceSync

/// What survives an interrupted delivery, a permanent refusal, a second sync, and a dry run. (The
/// sync lock is the store's: `StoreContractTests.oneSyncLockHolderAtATime`, on every store.)
@Suite struct SyncRecoveryTests {
    @Test(arguments: StoreKind.keepingSyncState)
    func aCrashMidDeliveryLosesNothingAndResendsTheSameMessageIds(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let crashing = RecordingDestination()
            crashing.crashAfter = 5
            let interrupted = try await harness.sync(now: demoNow, destination: crashing, batchSize: 2)
            #expect(interrupted.hasFailures)
            #expect(crashing.acknowledged.count == 4)
            // The snapshot holds exactly what was acknowledged.
            let acknowledgedUsers = Set(crashing.acknowledged.map(\.userId))
            await #expect(try harness.snapshotRowCount() == 4)
            await #expect(Set(try harness.snapshot("engaged_non_buyers").keys).isSubset(of: acknowledgedUsers))

            // The rerun (not due yet by schedule: the interrupted run never completed) finishes the work.
            let pendingIds = try await harness.outboxMessageIds(state: "pending")
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
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aPermanentFailureStaysOutOfTheSnapshotAndIsSentAgain(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let refusing = RecordingDestination()
            refusing.refuse = ["u_dev"]
            let first = try await harness.sync(now: demoNow, definitions: ["nps_detractors"], destination: refusing)
            #expect(first.pairs[0].failed == 1 && first.pairs[0].sent == 2)
            #expect(first.hasFailures)
            await #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_hana"])
            let failedMessageIds = try await harness.outboxMessageIds(state: "failed")
            #expect(failedMessageIds.count == 1)
            let again = RecordingDestination()
            let second = try await harness.sync(now: demoLater, definitions: ["nps_detractors"], destination: again)
            #expect(again.acknowledged.map(\.userId).contains("u_dev"))
            #expect(second.pairs[0].failed == 0)
            await #expect(try harness.snapshot("nps_detractors")["u_dev"] == "true")
            // A new run made the change again: a new messageId (the refused one was never accepted).
            #expect(Set(again.acknowledged.map(\.messageId)).isDisjoint(with: failedMessageIds))
        }
    }

    /// A dry run on the store opened for reading only lists the pending work and changes nothing
    /// (`SyncHarness.footprint`: on SQLite the file's bytes).
    @Test(arguments: StoreKind.keepingSyncState)
    func theDryRunOnAReadOnlyStoreChangesNothing(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            try await harness.ingest("events-later.ndjson", now: demoLater)
            // Leave pending work too, so the dry run reads the outbox.
            let crashing = RecordingDestination()
            crashing.crashAfter = 1
            _ = try await harness.sync(now: demoLater, destination: crashing, batchSize: 1)
            let before = try await harness.footprint()
            try await kind.withReadOnly(harness.store) { (reader: any Store) async throws in
                let syncer = Syncer(
                    store: reader, definitions: harness.engine.definitions, configuration: harness.configuration,
                    logger: silentLogger)
                let diff = try await syncer.dryRun(SyncSelection(destinations: ["outbox"]), now: demoLater)
                #expect(diff.pairs.map(\.counts.pending).reduce(0, +) == 6)
                #expect(diff.messages.count == 6)
            }
            #expect(try await harness.footprint() == before)
        }
    }
}
