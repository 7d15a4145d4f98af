import Foundation
import Testing

@testable import AudienceSync

/// The whole sync (diff, outbox, delivery, snapshot, retire) on each store: the same events and
/// definitions send the same changes from SQLite and from PostgreSQL, and on each the dry run
/// counts what the sync then sends.
@Suite struct SyncAcrossStoresTests {
    /// The `(userId, trait)` changes each step of the demo sends on a store of `kind`: the first
    /// sync, the sync after the later events, and a retire of `nps_detractors`; nil without the store.
    static func demoChanges(_ kind: StoreKind) async throws -> [[String]]? {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws -> [[String]] in
            let destination = RecordingDestination()
            let syncer = harness.syncer(destination, batchSize: 4)
            func sent(since count: Int) throws -> [String] {
                try destination.acknowledged.dropFirst(count).map { change(try JSONValue.parse($0.body)) }
            }
            var steps: [[String]] = []
            let selection = SyncSelection(definitions: [], destinations: ["outbox"], force: true)
            for (name, now) in [("events.ndjson", demoNow), ("events-later.ndjson", demoLater)] {
                try await harness.ingest(name, now: now)
                let dryRun = try await syncer.dryRun(selection, now: now)
                let before = destination.acknowledged.count
                let report = try await syncer.sync(selection, now: now)
                #expect(!report.hasFailures)
                let changes = try sent(since: before)
                #expect(try dryRun.messages.map { change(try JSONValue.parse($0)) } == changes, "\(kind)")
                steps.append(changes)
            }
            let before = destination.acknowledged.count
            let retired = try await syncer.retire(key: "nps_detractors", force: true, now: demoLater + 1)
            #expect(retired.destinations.map(\.dropped) == [true])
            steps.append(try sent(since: before))
            #expect(try await harness.store.snapshotSizes().allSatisfy { $0.pair.key != "nps_detractors" })
            return steps
        }
    }

    @Test func bothStoresSendTheSameChanges() async throws {
        let sqlite = try #require(try await Self.demoChanges(.sqlite))
        #expect(sqlite.map(\.count) == [25, 7, 5])
        guard let postgres = try await Self.demoChanges(.postgres) else { return }
        // The same messages to the byte: numbers are spelled as SQLite spells them (`49.0` for a
        // whole sum of decimals), so the messageIds, which hash the value, are the same too.
        #expect(postgres == sqlite)
    }
}
