import AudienceSync
import Foundation
import Testing

/// `audience-sync diff`, `sync` and `status` run as cron runs them, on the demo project, with the
/// state in SQLite and in PostgreSQL.
@Suite struct SyncCommandTests {
    static let now = "2026-11-22T12:00:00Z"
    static let later = "2026-11-22T14:30:00Z"
    let binary = Binary("audience-sync")

    /// Runs `body` on the demo, its events ingested, with its state in a store of `kind`.
    func demo(_ kind: StoreKind, _ body: (ScratchDirectory, TestStore) async throws -> Void) async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        try await TestStore.with(kind, in: scratch) { (store: TestStore) async throws -> Void in
            try store.configureDemo(in: scratch)
            let result = try binary.run(["ingest", "events.ndjson", "--now", Self.now], in: scratch.path)
            #expect(result.status == 1, "\(result.stderr)")  // the demo has 5 bad lines on purpose
            try await body(scratch, store)
        }
    }

    func outputLines(_ scratch: ScratchDirectory) -> [String] {
        let text = (try? String(contentsOfFile: scratch.file("out/identify.ndjson"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    @Test(arguments: StoreKind.allCases) func firstSyncThenTheLaterChanges(_ kind: StoreKind) async throws {
        try await demo(kind) { (scratch: ScratchDirectory, _: TestStore) async throws -> Void in
            try firstSyncThenTheLaterChanges(scratch)
        }
    }

    func firstSyncThenTheLaterChanges(_ scratch: ScratchDirectory) throws {
        // The demo's Segment and Sprig keys are not set: the run stops before sending anything.
        let noKeys = ["SEGMENT_WRITE_KEY": "", "SPRIG_API_KEY": ""]
        let refused = try binary.run(["sync", "--now", Self.now], in: scratch.path, environment: noKeys)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("destination 'segment'") || refused.stderr.contains("destination 'sprig'"))
        #expect(refused.stderr.contains("SEGMENT_WRITE_KEY") || refused.stderr.contains("SPRIG_API_KEY"))
        #expect(outputLines(scratch).isEmpty)

        let first = try binary.run(
            ["sync", "--now", Self.now, "--format", "json", "--destination", "outbox"], in: scratch.path)
        #expect(first.status == 0, "\(first.stderr)")
        let report = try parseJSON(first.stdout)
        let pairs = try #require(report["pairs"] as? [[String: Any]])
        let outbox = pairs.filter { $0["destination"] as? String == "outbox" }
        #expect(outbox.map { $0["sent"] as? Int ?? -1 }.reduce(0, +) == 25)
        #expect(outputLines(scratch).count == 25)

        let notDue = try binary.run(["sync", "--now", "2026-11-22T13:00:00Z", "--format", "json", "--destination", "outbox"], in: scratch.path)
        #expect(notDue.status == 0)
        #expect(outputLines(scratch).count == 25)

        _ = try binary.run(["ingest", "events-later.ndjson", "--now", Self.later], in: scratch.path)
        let second = try binary.run(["sync", "--now", Self.later, "--destination", "outbox"], in: scratch.path)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(outputLines(scratch).count == 25 + 7)

        let status = try binary.run(["status", "--now", Self.later, "--format", "json"], in: scratch.path)
        #expect(status.status == 0)
        let statusPairs = try #require(try parseJSON(status.stdout)["pairs"] as? [[String: Any]])
        let nps = try #require(
            statusPairs.first { $0["key"] as? String == "nps_detractors" && $0["destination"] as? String == "outbox" })
        #expect(nps["synced"] as? Int == 5 && nps["last_outcome"] as? String == "ok")
        #expect(nps["next_due_at"] as? String == "2026-11-22T16:30:00.000Z")
    }

    @Test(arguments: StoreKind.allCases) func diffChangesNothingAndPrintsWhatSyncSends(_ kind: StoreKind) async throws {
        try await demo(kind) { (scratch: ScratchDirectory, store: TestStore) async throws -> Void in
            try await diffChangesNothingAndPrintsWhatSyncSends(scratch, store)
        }
    }

    func diffChangesNothingAndPrintsWhatSyncSends(_ scratch: ScratchDirectory, _ store: TestStore) async throws {
        _ = try binary.run(["sync", "--now", Self.now, "--destination", "outbox"], in: scratch.path)
        _ = try binary.run(["ingest", "events-later.ndjson", "--now", Self.later], in: scratch.path)
        let before = try await store.fingerprint()
        let json = try binary.run(["diff", "--now", Self.later, "--format", "json"], in: scratch.path)
        #expect(json.status == 0, "\(json.stderr)")
        let ndjson = try binary.run(
            ["diff", "--now", Self.later, "--format", "ndjson", "--destination", "outbox"], in: scratch.path)
        let text = try binary.run(["diff", "--now", Self.later], in: scratch.path)
        #expect(text.stdout.contains("nps_detractors"))
        #expect(try await store.fingerprint() == before)

        let pairs = try #require(try parseJSON(json.stdout)["pairs"] as? [[String: Any]])
        let enteringNps = pairs.first { $0["key"] as? String == "nps_detractors" && $0["destination"] as? String == "outbox" }
        #expect(enteringNps?["entered"] as? Int == 2)
        let sentBefore = outputLines(scratch).count
        let sync = try binary.run(
            ["sync", "--now", Self.later, "--force", "--destination", "outbox"], in: scratch.path)
        #expect(sync.status == 0)
        let sent = Array(outputLines(scratch).dropFirst(sentBefore))
        #expect(sent == ndjson.stdout.split(separator: "\n").map(String.init))
        #expect(sent.count == 7)
    }

    @Test(arguments: StoreKind.allCases) func aSecondSyncExits3WhileTheLockIsHeld(_ kind: StoreKind) async throws {
        try await demo(kind) { (scratch: ScratchDirectory, store: TestStore) async throws -> Void in
            try await secondSyncWhileTheLockIsHeld(scratch, store)
        }
    }

    func secondSyncWhileTheLockIsHeld(_ scratch: ScratchDirectory, _ store: TestStore) async throws {
        try await store.withSyncLock {
            let result = try binary.run(["sync", "--now", Self.now], in: scratch.path)
            #expect(result.status == 3)
            #expect(result.stderr.contains("another sync holds the lock"))
            #expect(outputLines(scratch).isEmpty)
        }
        let unknown = try binary.run(["sync", "--definition", "nope", "--now", Self.now], in: scratch.path)
        #expect(unknown.status == 2)
    }
}
