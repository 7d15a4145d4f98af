import Testing

@testable import AudienceSync

/// Ingest stores messages 32 to a statement; these inputs are large enough to go through that path,
/// with duplicates placed inside one statement, across statements and across runs.
@Suite struct IngestChunkTests {
    /// A track of `user` with its own anonymous id, at minute `minute` of the demo day.
    private func line(_ id: String, user: String, minute: Int) -> String {
        let time = Timestamp.format(ingestNow - 86_400_000 + Int64(minute) * 60_000)
        return """
            {"type":"track","event":"Viewed","messageId":"\(id)","userId":"\(user)","anonymousId":"anon-\(user)","timestamp":"\(time)"}
            """
    }

    @Test func duplicatesInsideAndAcrossStatementsAreCountedExactly() throws {
        let harness = try IngestHarness()
        var lines: [String] = []
        for index in 0..<200 { lines.append(line("m\(index)", user: "u\(index % 7)", minute: index)) }
        // Repeats: within the first 32-row statement, of an earlier statement, and back to back.
        lines.insert(line("m3", user: "u3", minute: 3), at: 10)
        lines.insert(line("m5", user: "u5", minute: 5), at: 100)
        lines.insert(line("m150", user: "u1", minute: 150), at: 160)
        lines.insert(line("m150", user: "u1", minute: 150), at: 161)
        #expect(lines.count == 204)
        let summary = try harness.ingest(lines: lines)
        #expect(summary.accepted == 200)
        #expect(summary.duplicates == 4)
        #expect(try harness.scalar("SELECT count(*) FROM events") == .integer(200))
        #expect(try harness.scalar("SELECT count(DISTINCT message_id) FROM events") == .integer(200))

        let again = try harness.ingest(lines: lines)
        #expect(again.accepted == 0)
        #expect(again.duplicates == 204)
    }

    @Test func aDuplicateIdWithOtherContentLinksNothing() throws {
        let harness = try IngestHarness()
        var lines: [String] = []
        for index in 0..<64 { lines.append(line("m\(index)", user: "u\(index % 4)", minute: index)) }
        // Same messageId as a stored message but another user: ignored, so no link from it.
        lines.insert(
            """
            {"type":"identify","messageId":"m7","userId":"intruder","anonymousId":"anon-u0","timestamp":"2026-11-20T00:00:00Z"}
            """, at: 40)
        let summary = try harness.ingest(lines: lines)
        #expect(summary.accepted == 64)
        #expect(summary.duplicates == 1)
        #expect(try harness.scalar("SELECT count(*) FROM users WHERE user_id = 'intruder'") == .integer(0))
        #expect(try harness.scalar("SELECT count(*) FROM identity_links WHERE user_id = 'intruder'") == .integer(0))
        #expect(try harness.store.linkedUser(anonymousId: "anon-u0", now: ingestNow) == "u0")
    }

    @Test func usersAndLinksKeepTheEarliestTimeAcrossTransactions() throws {
        let harness = try IngestHarness()
        // Later events first, then an earlier one in a later transaction: first_seen must go down.
        var lines: [String] = []
        for index in 0..<70 { lines.append(line("late\(index)", user: "u1", minute: 500 + index)) }
        lines.append(line("early", user: "u1", minute: 1))
        let summary = try harness.ingest(lines.joined(separator: "\n") + "\n", transactionSize: 40)
        #expect(summary.accepted == 71)
        let expected = ingestNow - 86_400_000 + 60_000
        #expect(try harness.scalar("SELECT first_seen FROM users WHERE user_id = 'u1'") == .integer(expected))
        #expect(try harness.scalar("SELECT ts FROM identity_links WHERE anonymous_id = 'anon-u1'") == .integer(expected))
        #expect(try harness.scalar("SELECT message_id FROM identity_links WHERE anonymous_id = 'anon-u1'") == .text("early"))
    }
}
