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
        try await kind.withStore { (store: any Store, directory: TemporaryDirectory) async throws -> [[String]] in
            let definitions = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
            let file = try directory.write(
                "audience-sync.yml",
                """
                database: audiences.db
                definitions: \(definitions)
                schedule: 2h
                space_id: spa_demo
                destinations:
                  - name: outbox
                    type: file
                    path: out/identify.ndjson
                  - name: sprig
                    type: sprig
                    api_key: env:NO_SPRIG_KEY_IN_TESTS
                """)
            let configuration = try Configuration.load(file: file)
            let destination = RecordingDestination()
            let syncer = Syncer(
                store: store,
                definitions: try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration),
                configuration: configuration, logger: silentLogger, batchSize: 4,
                destinations: DestinationFactory { _ in destination })
            func sent(since count: Int) throws -> [String] {
                try destination.acknowledged.dropFirst(count).map { change(try JSONValue.parse($0.body)) }
            }
            var steps: [[String]] = []
            let selection = SyncSelection(definitions: [], destinations: ["outbox"], force: true)
            for (name, now) in [("events.ndjson", demoNow), ("events-later.ndjson", demoLater)] {
                let path = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/\(name)")
                _ = try await Ingester(sink: store, options: IngestOptions(now: now), logger: silentLogger).run([path])
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
            #expect(try await store.snapshotSizes().allSatisfy { $0.pair.key != "nps_detractors" })
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
