import Foundation
import Testing

/// `members` and `explain` on the demo project, against the memberships worked out by hand in
/// fixtures/demo/EVENTS.md.
@Suite struct ComputeCommandTests {
    let binary = Binary("audience-sync")
    static let now = "2026-11-22T12:00:00Z"

    /// A copy of the demo project with events.ndjson ingested.
    private func demo() throws -> ScratchDirectory {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let ingest = try binary.run(["ingest", "events.ndjson", "--now", Self.now, "--quiet"], in: scratch.path)
        #expect(ingest.status == 1, "the demo file holds five bad lines")
        return scratch
    }

    static let expectedMembers: [String: [String]] = [
        "nps_detractors": ["u_ben", "u_dev", "u_hana"],
        "order_completed_last_30days": ["u_ada", "u_cleo", "u_dev", "u_gus", "u_hana", "u_ivan", "u_kai"],
        "engaged_non_buyers": ["u_ben", "u_eli", "u_fay", "u_jade"],
        "signup_to_order_7d": ["u_cleo", "u_ivan"],
    ]

    @Test func demoMembershipsMatchTheHandComputedOnes() async throws {
        let scratch = try demo()
        for (key, expected) in Self.expectedMembers {
            let result = try binary.run(["members", key, "--now", Self.now, "--format", "json"], in: scratch.path)
            #expect(result.status == 0, "\(key): \(result.stderr)")
            let document = try parseJSON(result.stdout)
            #expect(document["key"] as? String == key)
            #expect(document["now"] as? String == "2026-11-22T12:00:00.000Z")
            #expect(document["members"] as? [String] == expected, "\(key)")
        }
    }

    @Test func demoComputedTraitValues() async throws {
        let scratch = try demo()
        let result = try binary.run(
            ["members", "total_spent_90_days", "--now", Self.now, "--format", "json"], in: scratch.path)
        #expect(result.status == 0)
        let values = try parseJSON(result.stdout)["values"] as? [String: Double] ?? [:]
        let expected: [String: Double] = [
            "u_ada": 200.5, "u_ben": 19.99, "u_cleo": 49, "u_dev": 150, "u_eli": 75, "u_fay": 60, "u_gus": 35,
            "u_hana": 89.9, "u_ivan": 210,
        ]
        #expect(values.keys.sorted() == expected.keys.sorted())
        for (user, value) in expected { #expect(abs((values[user] ?? -1) - value) < 1e-9, "\(user)") }
    }

    @Test func laterEventsChangeMembershipAtALaterNow() async throws {
        let scratch = try demo()
        _ = try binary.run(["ingest", "events-later.ndjson", "--now", "2026-11-22T14:30:00Z", "--quiet"], in: scratch.path)
        let before = try binary.run(
            ["members", "engaged_non_buyers", "--now", Self.now, "--format", "json"], in: scratch.path)
        #expect(try parseJSON(before.stdout)["members"] as? [String] == Self.expectedMembers["engaged_non_buyers"],
            "events after now do not exist yet")
        let after = try binary.run(
            ["members", "engaged_non_buyers", "--now", "2026-11-22T14:30:00Z", "--format", "json"], in: scratch.path)
        let members = try parseJSON(after.stdout)["members"] as? [String] ?? []
        #expect(!members.contains("u_ben"), "u_ben orders in events-later.ndjson and leaves the audience")
    }

    @Test func explainSaysWhy() async throws {
        let scratch = try demo()
        let result = try binary.run(
            ["explain", "u_hana", "--definition", "nps_detractors", "--definition", "engaged_non_buyers", "--now", Self.now,
             "--format", "json"], in: scratch.path)
        #expect(result.status == 0, "\(result.stderr)")
        let document = try parseJSON(result.stdout)
        #expect(document["user"] as? String == "u_hana")
        let definitions = document["definitions"] as? [[String: Any]] ?? []
        #expect(definitions.map { $0["key"] as? String } == ["nps_detractors", "engaged_non_buyers"])
        #expect(definitions.first?["member"] as? Bool == true)
        #expect(definitions.last?["member"] as? Bool == false)
        let reasons = definitions.last?["reasons"] as? [String] ?? []
        #expect(reasons.contains { $0.contains("in_audience order_completed_last_30days: holds") })

        let text = try binary.run(["explain", "u_fay", "--now", Self.now], in: scratch.path)
        #expect(text.stdout.contains("engaged_non_buyers: member"))
        #expect(text.stdout.contains("total_spent_90_days: 60"))
    }

    @Test func unknownKeysAndMissingStoresAreUsageErrors() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let noStore = try binary.run(["members", "nps_detractors"], in: scratch.path)
        #expect(noStore.status == 2)
        #expect(noStore.stderr.contains("ingest"))
        _ = try binary.run(["ingest", "events.ndjson", "--quiet"], in: scratch.path)
        let unknown = try binary.run(["members", "nps_detractor"], in: scratch.path)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("nps_detractors"), "the error lists the keys there are")
        let sql = try binary.run(["members", "nps_detractors", "--sql"], in: scratch.path)
        let statement = sql.stdout.components(separatedBy: "\n-- ?").first ?? ""
        #expect(statement.contains("json_type(e.message, ?"), "paths are bound parameters")
        #expect(!statement.contains("How likely are you"), "literals are not in the SQL text")
        #expect(sql.stdout.contains("-- ?6 = text(\"How likely are you to recommend us?\")"))
    }
}
