import Foundation
import Testing

@testable import AudienceSync

/// The progress a sync reports while delivering (shown on a terminal).
@Suite struct SyncProgressTests {
    @Test(arguments: StoreKind.keepingSyncState)
    func eachPairReportsItsDeliveredMessagesOutOfItsTotal(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            var syncer = harness.syncer(batchSize: 3)
            var steps: [DeliveryProgress] = []
            syncer.progress = { steps.append($0) }
            let report = try await syncer.sync(SyncSelection(destinations: ["outbox"]), now: demoNow)
            for pair in report.pairs {
                let mine = steps.filter { $0.key == pair.key && $0.destination == pair.destination }
                #expect(mine.first?.done == 0)
                #expect(mine.last?.done == pair.sent && mine.last?.total == pair.sent)
                #expect(mine.map(\.done) == mine.map(\.done).sorted())
            }
            // order_completed_last_30days sends 7 in batches of 3: 0, 3, 6, 7.
            #expect(steps.filter { $0.key == "order_completed_last_30days" }.map(\.done) == [0, 3, 6, 7])
        }
    }
}
