import Foundation
import Testing

@testable import AudienceSync

/// Messages that can never be sent (SPEC §7 `invalid`): an identify over 32 KB.
@Suite struct SyncInvalidTests {
    /// Runs `body` with a harness whose one definition is a `last` trait of a profile text, where
    /// one user's text is 40,000 characters long.
    func withHarness(_ kind: StoreKind, _ body: (SyncHarness) async throws -> Void) async throws {
        let definitions = try TemporaryDirectory()
        try definitions.write(
            "bio.yml",
            """
            name: Last Bio
            kind: computed_trait
            compute:
              op: last
              event: Profile Updated
              property: properties.bio
            destinations: [outbox]
            """)
        try await SyncHarness.with(kind, definitions: definitions.path) { (harness: SyncHarness) async throws in
            let long = String(repeating: "x", count: 40_000)
            let events = try harness.directory.write(
                "bio.ndjson",
                [("u_big", long), ("u_small", "hello"), ("u_tiny", "hi")].enumerated().map { index, user in
                    """
                    {"type":"track","event":"Profile Updated","userId":"\(user.0)","messageId":"bio-\(index)",\
                    "timestamp":"2026-11-01T10:00:00.000Z","properties":{"bio":"\(user.1)"}}
                    """
                }.joined(separator: "\n") + "\n")
            try await harness.ingest(events)
            try await body(harness)
        }
        withExtendedLifetime(definitions) {}
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aMessageOver32KBIsCountedInvalidByDiffAndFailedBySync(kind: StoreKind) async throws {
        try await withHarness(kind) { (harness: SyncHarness) async throws in
            let diff = try await harness.syncer().dryRun(SyncSelection(force: true), now: demoNow)
            let pair = try #require(diff.pairs.first { $0.key == "last_bio" && $0.destination == "outbox" })
            #expect(pair.counts.entered == 3)
            #expect(pair.invalid == 1)
            #expect(pair.invalidSample.map(\.userId) == ["u_big"])
            #expect(pair.invalidSample.first?.reason.contains("over the limit of 32768 bytes") == true)
            #expect(diff.messages.count == 2)
            #expect(try reportJSON(diff)["pairs"]?.arrayValue?.contains { $0["invalid"] == .int(1) } == true)
            #expect(diff.text.contains("not sent to u_big"))
            // Counting only (diff's text and json formats) sizes the messages without building them.
            let counted = try await harness.syncer().dryRun(SyncSelection(force: true), now: demoNow, messages: .count)
            #expect(counted.messages.isEmpty)
            #expect(counted.messageCount == diff.messageCount && counted.messageCount == diff.messages.count)
            #expect(counted.pairs.map(\.invalid) == diff.pairs.map(\.invalid))
            #expect(counted.pairs.map(\.invalidSample) == diff.pairs.map(\.invalidSample))

            let report = try await harness.sync(now: demoNow)
            let synced = try #require(report.pairs.first)
            #expect(synced.sent == 2 && synced.invalid == 1 && synced.failed == 1 && synced.pending == 0)
            #expect(report.hasFailures)
            #expect(report.warnings.contains { $0.contains("not sent to u_big") })
            #expect(try harness.output().map { $0["userId"]?.stringValue } == ["u_small", "u_tiny"])
            await #expect(try harness.snapshot("last_bio").keys.sorted() == ["u_small", "u_tiny"])
            let failed = try await harness.outbox().filter { $0.state == "failed" }
            #expect(failed.map(\.userId) == ["u_big"])
            #expect(failed.first?.reason?.contains("32 KB") == true)

            // The next due sync diffs it again and counts it again; nothing else is re-sent.
            let again = try await harness.sync(now: demoLater)
            #expect(again.pairs.first?.invalid == 1 && again.pairs.first?.sent == 0)
            #expect(try harness.output().count == 2)
        }
    }

    @Test(arguments: [(32 * 1024, false), (32 * 1024 + 1, true)])
    func theLimitIs32KiBOfJSONText(size: Int, invalid: Bool) {
        #expect((SyncMessage.invalidReason(size: String(repeating: "a", count: size).utf8.count) != nil) == invalid)
    }
}
