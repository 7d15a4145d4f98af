import Foundation
import Testing

@testable import AudienceSync

/// While an ingest runs, the WAL is checkpointed on a thread of its own (`SQLiteCheckpointer`).
@Suite struct IngestCheckpointTests {
    private func lines(_ count: Int, prefix: String) -> String {
        (0..<count).map { index in
            let time = Timestamp.format(ingestNow - 86_400_000 + Int64(index) * 1000)
            return #"{"type":"track","event":"Viewed","messageId":"\#(prefix)\#(index)","userId":"u\#(index % 13)","anonymousId":"a\#(index % 17)","timestamp":"\#(time)","properties":{"padding":"\#(String(repeating: "x", count: 2000))"}}"#
        }.joined(separator: "\n") + "\n"
    }

    private func walBytes(_ harness: IngestHarness) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: harness.databasePath + "-wal")[.size] as? Int) ?? 0
    }

    /// With a tiny WAL limit every transaction after the first waits for the checkpoint of the one
    /// before, so the WAL starts over at each one and stays one transaction long, while every page of
    /// the database went through it; automatic checkpoints come back after. Not a matter of timing:
    /// the writer learns the WAL's size from its own commit, and with no reader the checkpoint it
    /// waits for copies everything.
    @Test func theWALStartsOverWhenItGrowsPastTheLimit() async throws {
        let harness = try await IngestHarness()
        var options = IngestOptions(now: ingestNow)
        options.transactionSize = 100
        options.walLimitBytes = 1
        let summary = try await harness.ingest(
            paths: [try harness.input(Array(lines(3000, prefix: "m").utf8))], options: options)
        #expect(summary.accepted == 3000)
        await #expect(try harness.scalar("SELECT count(*) FROM events") == .integer(3000))
        await #expect(try harness.scalar("SELECT count(*) FROM users") == .integer(13))
        await #expect(try harness.scalar("SELECT count(*) FROM identity_links") == .integer(13 * 17))
        await #expect(try harness.scalar("PRAGMA wal_autocheckpoint") == .integer(1000))
        // 30 transactions of about 0.35 MB into a 7.5 MB database when this was written; without the
        // wait the WAL holds every transaction, several times the database.
        let databaseBytes = (try FileManager.default.attributesOfItem(atPath: harness.databasePath)[.size] as? Int) ?? 0
        #expect(databaseBytes > 6 << 20)
        #expect(walBytes(harness) * 6 < databaseBytes)
    }

    /// A reader that keeps an old snapshot stops checkpoints from copying anything; the ingest still
    /// finishes (waiting only for checkpoints that copy what they can), and the reader's view is unchanged.
    @Test func aLongReaderDoesNotBlockTheIngest() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines(10, prefix: "before"))
        let reader = try Database(path: harness.databasePath, mode: .readOnly)
        try reader.execute("BEGIN")
        #expect(try reader.prepare("SELECT count(*) FROM events").scalar() == .integer(10))

        var options = IngestOptions(now: ingestNow)
        options.transactionSize = 100
        options.walLimitBytes = 1
        let summary = try await harness.ingest(paths: [try harness.input(Array(lines(1000, prefix: "m").utf8))], options: options)
        #expect(summary.accepted == 1000)
        #expect(try reader.prepare("SELECT count(*) FROM events").scalar() == .integer(10))
        try reader.execute("COMMIT")
        #expect(try reader.prepare("SELECT count(*) FROM events").scalar() == .integer(1010))
    }

    /// An ingest that fails part-way (its second input is missing) stops checkpointing and keeps
    /// what it committed.
    @Test func anAbandonedIngestStopsCheckpointing() async throws {
        let harness = try await IngestHarness()
        var options = IngestOptions(now: ingestNow)
        options.transactionSize = 100
        let input = try harness.input(Array(lines(250, prefix: "m").utf8))
        await #expect(throws: AudienceSyncError.self) {
            _ = try await harness.ingest(paths: [input, harness.directory.file("missing.ndjson")], options: options)
        }
        await #expect(try harness.scalar("SELECT count(*) FROM events") == .integer(200))
        await #expect(try harness.scalar("PRAGMA wal_autocheckpoint") == .integer(1000))
    }
}
