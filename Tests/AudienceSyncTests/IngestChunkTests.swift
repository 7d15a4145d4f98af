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

    @Test func duplicatesInsideAndAcrossStatementsAreCountedExactly() async throws {
        let harness = try await IngestHarness()
        var lines: [String] = []
        for index in 0..<200 { lines.append(line("m\(index)", user: "u\(index % 7)", minute: index)) }
        // Repeats: within the first 32-row statement, of an earlier statement, and back to back.
        lines.insert(line("m3", user: "u3", minute: 3), at: 10)
        lines.insert(line("m5", user: "u5", minute: 5), at: 100)
        lines.insert(line("m150", user: "u1", minute: 150), at: 160)
        lines.insert(line("m150", user: "u1", minute: 150), at: 161)
        #expect(lines.count == 204)
        let summary = try await harness.ingest(lines: lines)
        #expect(summary.accepted == 200)
        #expect(summary.duplicates == 4)
        await #expect(try harness.scalar("SELECT count(*) FROM events") == .integer(200))
        await #expect(try harness.scalar("SELECT count(DISTINCT message_id) FROM events") == .integer(200))

        let again = try await harness.ingest(lines: lines)
        #expect(again.accepted == 0)
        #expect(again.duplicates == 204)
    }

    @Test func aDuplicateIdWithOtherContentLinksNothing() async throws {
        let harness = try await IngestHarness()
        var lines: [String] = []
        for index in 0..<64 { lines.append(line("m\(index)", user: "u\(index % 4)", minute: index)) }
        // Same messageId as a stored message but another user: ignored, so no link from it.
        lines.insert(
            """
            {"type":"identify","messageId":"m7","userId":"intruder","anonymousId":"anon-u0","timestamp":"2026-11-20T00:00:00Z"}
            """, at: 40)
        let summary = try await harness.ingest(lines: lines)
        #expect(summary.accepted == 64)
        #expect(summary.duplicates == 1)
        await #expect(try harness.scalar("SELECT count(*) FROM users WHERE user_id = 'intruder'") == .integer(0))
        await #expect(try harness.scalar("SELECT count(*) FROM identity_links WHERE user_id = 'intruder'") == .integer(0))
        await #expect(try harness.store.linkedUser(anonymousId: "anon-u0", now: ingestNow) == "u0")
    }

    @Test func usersAndLinksKeepTheEarliestTimeAcrossTransactions() async throws {
        let harness = try await IngestHarness()
        // Later events first, then an earlier one in a later transaction: first_seen must go down.
        var lines: [String] = []
        for index in 0..<70 { lines.append(line("late\(index)", user: "u1", minute: 500 + index)) }
        lines.append(line("early", user: "u1", minute: 1))
        let summary = try await harness.ingest(lines.joined(separator: "\n") + "\n", transactionSize: 40)
        #expect(summary.accepted == 71)
        let expected = ingestNow - 86_400_000 + 60_000
        await #expect(try harness.scalar("SELECT first_seen FROM users WHERE user_id = 'u1'") == .integer(expected))
        await #expect(try harness.scalar("SELECT ts FROM identity_links WHERE anonymous_id = 'anon-u1'") == .integer(expected))
        await #expect(try harness.scalar("SELECT message_id FROM identity_links WHERE anonymous_id = 'anon-u1'") == .text("early"))
    }

    /// Users and links are numbered on the parsing thread and the numbering starts over when it grows
    /// too large: with a tiny limit (renumbering every batch) and small transactions, the stored users
    /// and links are those of the default run, across files, duplicates and times that go back.
    @Test func renumberingIdentitiesStoresTheSameUsersAndLinks() async throws {
        var first: [String] = []
        var second: [String] = []
        for index in 0..<3000 {
            // Times go back every 500 lines, so later transactions lower stored times.
            let minute = (index % 500) * 3 + (index / 500)
            first.append(line("a\(index)", user: "u\(index % 37)", minute: 2000 - minute))
        }
        for index in 0..<2500 {
            let user = "u\(index % 53)"
            let time = Timestamp.format(ingestNow - 86_400_000 + Int64(index % 700) * 60_000)
            switch index % 5 {
            case 0:
                // An alias links previousId (and the anonymous id, when it differs) to the user.
                second.append(
                    #"{"type":"alias","userId":"\#(user)","previousId":"prev-\#(index % 11)","anonymousId":"anon-\#(user)","messageId":"b\#(index)","timestamp":"\#(time)"}"#
                )
            case 1:
                // A duplicate of the first file with another user: links nothing.
                second.append(
                    #"{"type":"identify","userId":"\#(user)","anonymousId":"anon-x\#(index % 7)","messageId":"a\#(index)","timestamp":"\#(time)"}"#
                )
            default:
                second.append(line("b\(index)", user: user, minute: index % 700))
            }
        }
        func run(limit: Int?, transactionSize: Int?) async throws -> (IngestSummary, [[SQLiteValue]], [[SQLiteValue]]) {
            let harness = try await IngestHarness()
            var options = IngestOptions(now: ingestNow)
            if let limit { options.identityNumberLimit = limit }
            if let transactionSize { options.transactionSize = transactionSize }
            let paths = [
                try harness.input(Array((first.joined(separator: "\n") + "\n").utf8)),
                try harness.input(Array((second.joined(separator: "\n") + "\n").utf8)),
            ]
            let summary = try await harness.ingest(paths: paths, options: options)
            return await (
                summary, try harness.rows("SELECT * FROM users ORDER BY user_id"),
                try harness.rows("SELECT * FROM identity_links ORDER BY anonymous_id, user_id")
            )
        }
        let (expectedSummary, expectedUsers, expectedLinks) = try await run(limit: nil, transactionSize: nil)
        let (summary, users, links) = try await run(limit: 3, transactionSize: 700)
        #expect(expectedSummary.accepted == 5000)
        #expect(expectedSummary.duplicates == 500)
        #expect(summary.accepted == expectedSummary.accepted)
        #expect(summary.duplicates == expectedSummary.duplicates)
        #expect(summary.anonymous == expectedSummary.anonymous)
        #expect(expectedUsers.count == 53)
        #expect(expectedLinks.count == 53 + 500)
        #expect(firstDifference(users, expectedUsers) == nil)
        #expect(firstDifference(links, expectedLinks) == nil)
    }

    /// The first row that differs (`nil` when the rows are the same), so that a failure shows one row, not thousands.
    private func firstDifference(_ rows: [[SQLiteValue]], _ expected: [[SQLiteValue]]) -> String? {
        for (index, (row, expectedRow)) in zip(rows, expected).enumerated() where row != expectedRow {
            return "row \(index): \(row) instead of \(expectedRow)"
        }
        return rows.count == expected.count ? nil : "\(rows.count) rows instead of \(expected.count)"
    }
}
