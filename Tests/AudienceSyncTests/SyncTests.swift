import Foundation
import Testing

@testable import AudienceSync

@Suite struct SyncTests {
    @Test(arguments: StoreKind.keepingSyncState)
    func firstSyncSendsEveryMemberAndValueAndNoFalse(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let report = try await harness.sync(now: demoNow)
            let sent = try harness.output().map(change)
            let perDefinition: [Int] = [3, 7, 9, 4, 2]
            #expect(sent.count == perDefinition.reduce(0, +))
            #expect(sent.filter { $0.hasSuffix("=false") || $0.hasSuffix("=null") }.isEmpty)
            #expect(sent.contains("u_ben nps_detractors=true"))
            #expect(sent.contains("u_ada total_spent_90_days=200.5"))
            #expect(report.pairs.allSatisfy { $0.due && $0.firstSync && $0.failed == 0 })
            #expect(report.pairs.map(\.sent).reduce(0, +) == 25)
            await #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_dev", "u_hana"])
            await #expect(try harness.snapshot("total_spent_90_days")["u_cleo"] == "49.0")
            #expect(!report.hasFailures)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func laterSyncSendsOnlyTheChangesOfEventsMd(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            let first = try harness.output().count
            try await harness.ingest("events-later.ndjson", now: demoLater)
            let report = try await harness.sync(now: demoLater)
            let sent = Array(try harness.output().map(change).dropFirst(first)).sorted()
            #expect(
                sent == [
                    "u_ben engaged_non_buyers=false", "u_ben order_completed_last_30days=true",
                    "u_ben total_spent_90_days=78.99", "u_cleo total_spent_90_days=64.5", "u_kai nps_detractors=true",
                    "u_lea nps_detractors=true", "u_max engaged_non_buyers=true",
                ])
            #expect(report.pairs.allSatisfy { $0.due && !$0.firstSync })
            await #expect(
                try harness.snapshot("engaged_non_buyers").keys.sorted() == ["u_eli", "u_fay", "u_jade", "u_max"])
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aPairIsDueOnlyAfterItsSchedule(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            try await harness.ingest("events-later.ndjson", now: demoLater)
            let early = try await harness.sync(now: demoNow + 3_600_000)
            #expect(early.pairs.allSatisfy { !$0.due && $0.sent == 0 })
            let forced = try await harness.sync(now: demoNow + 3_600_000, force: true, definitions: ["nps_detractors"])
            #expect(forced.pairs.map(\.key) == ["nps_detractors"])
            #expect(forced.pairs[0].due && forced.pairs[0].sent == 1)  // u_lea's answer at 13:00
            let later = try await harness.sync(now: demoNow + 7_200_000)
            #expect(
                later.pairs.filter(\.due).map(\.key).sorted() == [
                    "engaged_non_buyers", "order_completed_last_30days", "signup_to_order_7d", "total_spent_90_days",
                ])
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func computedTraitGoneIsSentAsNull(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            // 80 days later u_ben's only order (50 days before the demo time) is out of the 90-day window.
            let report = try await harness.sync(now: demoNow + 80 * 86_400_000, definitions: ["total_spent_90_days"])
            let sent = try harness.output().map(change)
            #expect(sent.contains("u_ben total_spent_90_days=null"))
            #expect(sent.contains("u_ada total_spent_90_days=120.0"))
            #expect(report.pairs[0].sent > 0)
            await #expect(try harness.snapshot("total_spent_90_days")["u_ben"] == nil)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func diffCountsEqualTheFollowingForcedSync(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            try await harness.ingest("events-later.ndjson", now: demoLater)
            let diff = try await harness.syncer().dryRun(SyncSelection(destinations: ["outbox"]), now: demoLater)
            let before = try harness.output().count
            let report = try await harness.sync(now: demoLater, force: true)
            let sentLines = try harness.output().dropFirst(before).map(\.jsonString)
            for pair in diff.pairs {
                let synced = try #require(
                    report.pairs.first { $0.key == pair.key && $0.destination == pair.destination })
                #expect(pair.counts.changes == synced.sent, "\(pair.key)")
            }
            #expect(diff.messages == Array(sentLines))
            let nps = try #require(diff.pairs.first { $0.key == "nps_detractors" })
            #expect(
                nps.counts.entered == 2 && nps.counts.synced == 3 && nps.counts.members == 5
                    && nps.counts.unchanged == 3)
            #expect(nps.sample[.entered] == ["u_kai", "u_lea"])
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func sendAsTrackSendsAudienceEnteredAndExited(kind: StoreKind) async throws {
        try await SyncHarness.with(kind, sendAs: "track") { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow, definitions: ["nps_detractors", "total_spent_90_days"])
            let messages = try harness.output()
            let track = try #require(messages.first { $0["type"] == .string("track") })
            #expect(track["event"] == .string("Audience Entered"))
            #expect(track["properties"]?["audience_key"] == .string("nps_detractors"))
            #expect(track["properties"]?["nps_detractors"] == .bool(true))
            #expect(messages.filter { $0["type"] == .string("identify") }.count == 9)  // computed traits stay identify
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func messagesCarryPersonasContextAndStableIds(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow, definitions: ["nps_detractors"])
            let message = try #require(try harness.output().first)
            #expect(message["type"] == .string("identify"))
            #expect(message["timestamp"] == .string("2026-11-22T12:00:00.000Z"))
            let personas = try #require(message["context"]?["personas"])
            #expect(personas["computation_class"] == .string("audience"))
            #expect(personas["computation_key"] == .string("nps_detractors"))
            #expect(
                personas["computation_id"] == .string(SyncMessage.computationID(key: "nps_detractors", kind: .audience))
            )
            #expect(personas["space_id"] == .string("spa_demo") && personas["namespace"] == .string("spa_demo"))
            #expect(message["context"]?["library"]?["name"] == .string("audience-sync"))
            let messageId = try #require(message["messageId"]?.stringValue)
            #expect(messageId.count <= 100)
            #expect(
                messageId
                    == SyncMessage.messageID(
                        key: "nps_detractors", destination: "outbox", userId: "u_ben", value: "true", runId: 1))
            #expect(SyncMessage.computationID(key: "a", kind: .audience).count == 28)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aMissingSecretStopsTheRunBeforeAnythingIsSent(kind: StoreKind) async throws {
        let segment = "  - name: segment\n    type: segment\n    write_key: file:keys/no-such-file"
        try await SyncHarness.with(kind, extraDestinations: segment) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            // nps_detractors goes to sprig (env:NO_SPRIG_KEY_IN_TESTS) and to the file destination.
            let error = await #expect(throws: AudienceSyncError.self) {
                try await harness.sync(now: demoNow, definitions: ["nps_detractors"], destinations: [])
            }
            #expect(error?.code == .configuration)
            #expect(error?.code.isUsage == true)
            #expect(
                error?.description
                    == "destination 'sprig': api_key: the environment variable NO_SPRIG_KEY_IN_TESTS is not set (it holds a secret)"
            )
            #expect(try harness.output().isEmpty)
            await #expect(try harness.snapshot("nps_detractors").isEmpty)

            let segmentError = await #expect(throws: AudienceSyncError.self) {
                try await harness.sync(
                    now: demoNow, definitions: ["order_completed_last_30days"], destinations: ["segment"])
            }
            #expect(segmentError?.code == .configuration)
            #expect(segmentError?.file == harness.directory.file("keys/no-such-file"))
            #expect(segmentError?.message == "destination 'segment': write_key: cannot read the secret file")
            let outboxOnly = try await harness.sync(now: demoNow, definitions: ["nps_detractors"])
            #expect(!outboxOnly.hasFailures)
            await #expect(try harness.snapshot("nps_detractors").keys.sorted() == ["u_ben", "u_dev", "u_hana"])
        }
    }
}
