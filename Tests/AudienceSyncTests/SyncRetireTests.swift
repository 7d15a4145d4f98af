import Foundation
import Testing

@testable import AudienceSync

/// `retire` (SPEC §6): removing an orphaned snapshot's users from its destination, then dropping it.
@Suite struct SyncRetireTests {
    /// The demo synced once, with its definitions in a folder the test may change.
    final class Setup {
        let definitions: TemporaryDirectory
        let harness: SyncHarness

        private init(definitions: TemporaryDirectory, harness: SyncHarness) {
            self.definitions = definitions
            self.harness = harness
        }

        /// Runs `body` with the demo synced once on a new store of `kind`.
        static func with(_ kind: StoreKind, _ body: (Setup) async throws -> Void) async throws {
            let definitions = try TemporaryDirectory()
            let demo = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
            for name in try FileManager.default.contentsOfDirectory(atPath: demo) {
                try FileManager.default.copyItem(
                    atPath: (demo as NSString).appendingPathComponent(name), toPath: definitions.file(name))
            }
            try await SyncHarness.with(kind, definitions: definitions.path) { (harness: SyncHarness) async throws in
                try await harness.ingest("events.ndjson")
                _ = try await harness.sync(now: demoNow)
                try await body(Setup(definitions: definitions, harness: harness))
            }
        }

        /// A syncer over the definitions as the folder holds them now.
        func syncer(_ destination: (any Destination)? = nil, batchSize: Int? = nil) throws -> Syncer {
            let configuration = harness.configuration
            let engine = MembershipEngine(
                source: harness.store,
                definitions: try DefinitionSet.load(directory: definitions.path, configuration: configuration))
            return Syncer(
                engine: engine, state: harness.store, configuration: configuration, logger: silentLogger,
                batchSize: batchSize,
                destinations: DestinationFactory {
                    if let destination { return destination }
                    return try DestinationFactory.standardDestination($0, logger: silentLogger)
                })
        }

        func remove(_ name: String) throws {
            try FileManager.default.removeItem(atPath: definitions.file(name))
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aDeletedAudienceIsRetiredWithFalseForEveryUserAndDropped(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            try setup.remove("nps_detractors.yml")
            let sync = try await setup.syncer().sync(SyncSelection(destinations: ["outbox"]), now: demoNow + 60_000)
            #expect(sync.orphaned == [SyncReport.Orphan(key: "nps_detractors", destination: "outbox", synced: 3)])
            #expect(sync.warnings.contains { $0.contains("run 'audience-sync retire nps_detractors'") })
            let status = try await SyncStatus.load(
                engine: try setup.syncer().engine, state: setup.harness.store,
                configuration: setup.harness.configuration,
                now: demoNow)
            #expect(status.text.contains("run 'audience-sync retire nps_detractors'"))

            let before = try setup.harness.output().count
            await #expect(try setup.harness.pairExists("nps_detractors"))
            let report = try await setup.syncer().retire(key: "nps_detractors", now: demoLater)
            #expect(report.destinations == [.init(destination: "outbox", sent: 3, dropped: true)])
            #expect(!report.hasFailures)
            let sent = Array(try setup.harness.output().dropFirst(before))
            #expect(
                sent.map(change) == [
                    "u_ben nps_detractors=false", "u_dev nps_detractors=false", "u_hana nps_detractors=false",
                ])
            #expect(sent.allSatisfy { $0["context"]?["personas"]?["computation_class"]?.stringValue == "audience" })
            #expect(sent.allSatisfy { $0["timestamp"]?.stringValue == Timestamp.format(demoLater) })
            await #expect(try setup.harness.snapshot("nps_detractors").isEmpty)
            await #expect(try !setup.harness.pairExists("nps_detractors"))
            #expect(
                try await setup.syncer().sync(SyncSelection(destinations: ["outbox"]), now: demoLater).orphaned.isEmpty)

            // Nothing is left: a second retire is refused and sends nothing.
            await #expect(throws: AudienceSyncError.self) {
                try await setup.syncer().retire(key: "nps_detractors", now: demoLater)
            }
            #expect(try setup.harness.output().count == before + 3)
            let destinations = try reportJSON(report)["destinations"]?.arrayValue ?? []
            #expect(destinations.count == 1)
            #expect(destinations.first?["destination"] == .string("outbox") && destinations.first?["sent"] == .int(3))
            #expect(destinations.first?["failed"] == .int(0) && destinations.first?["pending"] == .int(0))
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aTraitWhoseKeyChangedIsRetiredWithNull(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            let old = try String(contentsOfFile: setup.definitions.file("total_spent_90_days.yml"), encoding: .utf8)
            try setup.remove("total_spent_90_days.yml")
            try setup.definitions.write(
                "spend.yml", old.replacingOccurrences(of: "Total Spent 90 Days", with: "Spend 90d"))
            let before = try setup.harness.output().count
            let synced = try await setup.harness.snapshot("total_spent_90_days").count
            #expect(synced == 9)
            let report = try await setup.syncer().retire(key: "total_spent_90_days", now: demoLater)
            #expect(report.destinations.first?.sent == synced)
            #expect(report.destinations.first?.dropped == true)
            let sent = Array(try setup.harness.output().dropFirst(before))
            #expect(sent.map(change).allSatisfy { $0.hasSuffix("total_spent_90_days=null") })
            #expect(sent.allSatisfy { $0["context"]?["personas"]?["computation_class"]?.stringValue == "trait" })
            await #expect(try setup.harness.snapshot("total_spent_90_days").isEmpty)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func anEnabledDefinitionIsRefusedUnlessForced(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            let refused = await errorLines {
                _ = try await setup.syncer().retire(key: "nps_detractors", now: demoLater)
            }
            #expect(
                refused.count == 1 && refused[0].contains("still an enabled definition")
                    && refused[0].contains("--force"))
            await #expect(try setup.harness.snapshot("nps_detractors").count == 3)

            let forced = try await setup.syncer().retire(
                key: "nps_detractors", destinations: ["outbox"], force: true, now: demoLater)
            #expect(forced.destinations.map(\.sent) == [3])
            // The definition is still there: its next sync starts over as a first sync.
            let next = try await setup.syncer().sync(
                SyncSelection(definitions: ["nps_detractors"], destinations: ["outbox"]), now: demoLater)
            #expect(next.pairs.first?.firstSync == true)
            // Every member at the later time: the three of the first sync and u_lea, who answered at 13:00.
            #expect(next.pairs.first?.sent == 4)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aDisabledDefinitionIsNotAnOrphanButCanBeRetiredWithoutForce(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            let file = setup.definitions.file("nps_detractors.yml")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            try (text + "enabled: false\n").write(toFile: file, atomically: true, encoding: .utf8)
            let sync = try await setup.syncer().sync(SyncSelection(destinations: ["outbox"]), now: demoLater)
            #expect(sync.orphaned.isEmpty)
            let report = try await setup.syncer().retire(key: "nps_detractors", now: demoLater)
            #expect(report.destinations.map(\.sent) == [3])
            await #expect(try setup.harness.snapshot("nps_detractors").isEmpty)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func unknownDestinationsAndNothingToRetireAreUsageErrors(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            try setup.remove("nps_detractors.yml")
            let unknown = await errorLines {
                _ = try await setup.syncer().retire(key: "nps_detractors", destinations: ["nowhere"], now: demoLater)
            }
            #expect(unknown.first?.contains("no destination is named 'nowhere'") == true)
            let nothing = await errorLines { _ = try await setup.syncer().retire(key: "never_synced", now: demoLater) }
            #expect(nothing.first?.contains("nothing to retire") == true)
            #expect(nothing.first?.contains("orphaned: nps_detractors → outbox") == true)
            await #expect(try setup.harness.snapshot("nps_detractors").count == 3)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func anInterruptedRetireIsFinishedWithTheSameMessageIds(kind: StoreKind) async throws {
        try await Setup.with(kind) { (setup: Setup) async throws in
            try setup.remove("order_completed_last_30days.yml")
            try setup.remove("engaged_non_buyers.yml")  // it refers to the other one
            let crashing = RecordingDestination()
            crashing.crashAfter = 3
            let interrupted = try await setup.syncer(crashing, batchSize: 2).retire(
                key: "order_completed_last_30days", now: demoLater)
            #expect(interrupted.hasFailures)
            #expect(interrupted.destinations.first?.sent == 2 && interrupted.destinations.first?.pending == 5)
            #expect(interrupted.destinations.first?.dropped == false)
            // The snapshot lost exactly the acknowledged users.
            let acknowledged = Set(crashing.acknowledged.map(\.userId))
            await #expect(
                try Set(setup.harness.snapshot("order_completed_last_30days").keys).isDisjoint(with: acknowledged))
            await #expect(try setup.harness.snapshot("order_completed_last_30days").count == 5)
            let pendingIds = try await setup.harness.outboxMessageIds(state: "pending")

            let rerun = RecordingDestination()
            let finished = try await setup.syncer(rerun).retire(
                key: "order_completed_last_30days", now: demoLater + 60_000)
            #expect(finished.destinations.first?.resumed == 5 && finished.destinations.first?.sent == 0)
            #expect(finished.destinations.first?.dropped == true)
            #expect(rerun.received.map(\.messageId) == pendingIds)
            await #expect(try setup.harness.snapshot("order_completed_last_30days").isEmpty)
            await #expect(try !setup.harness.pairExists("order_completed_last_30days"))
        }
    }
}
