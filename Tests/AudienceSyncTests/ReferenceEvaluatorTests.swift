import Foundation
import Testing

@testable import AudienceSync

/// The oracle itself, checked against the hand-computed demo results (`fixtures/demo/EVENTS.md`)
/// and against small hand-made cases for each operator and condition head.
@Suite struct ReferenceEvaluatorTests {
    static let demoNow = Timestamp.parse("2026-11-22T12:00:00Z")!
    static let day: Int64 = 86_400_000

    static func demo() throws -> ReferenceEvaluator {
        let folder = repositoryRoot + "/fixtures/demo"
        let configuration = try Configuration.load(file: folder + "/audience-sync.yml")
        let definitions = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        let text = try String(contentsOfFile: folder + "/events.ndjson", encoding: .utf8)
        return ReferenceEvaluator(messages: ReferenceEvaluator.messages(ndjson: text), definitions: definitions)
    }

    // MARK: The demo (EVENTS.md)

    @Test func demoInput() throws {
        let oracle = try Self.demo()
        // 63 valid messages, one of them a duplicate.
        #expect(oracle.messages.count == 62)
        #expect(
            oracle.universe(now: Self.demoNow).sorted() == [
                "u_ada", "u_ben", "u_cleo", "u_dev", "u_eli", "u_fay", "u_gus", "u_hana", "u_ivan", "u_jade", "u_kai",
                "u_lea",
            ])
        #expect(oracle.linkedUser("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d08", now: Self.demoNow) == "u_hana")
        #expect(oracle.linkedUser("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e09", now: Self.demoNow) == "u_ivan")
        #expect(oracle.linkedUser("9e7d3c2b-4f1a-4b8c-8d6e-5a4b3c2d1e0f", now: Self.demoNow) == nil)
        #expect(oracle.traits("u_jade", now: Self.demoNow)["plan"] == .string("pro"))
        #expect(oracle.traits("u_jade", now: Timestamp.parse("2026-11-19T15:59:59.999Z")!)["plan"] == .string("free"))
    }

    @Test func demoAudiences() throws {
        let oracle = try Self.demo()
        let now = Self.demoNow
        #expect(oracle.members("nps_detractors", now: now) == ["u_ben", "u_dev", "u_hana"])
        #expect(
            oracle.members("order_completed_last_30days", now: now)
                == ["u_ada", "u_cleo", "u_dev", "u_gus", "u_hana", "u_ivan", "u_kai"])
        #expect(oracle.members("engaged_non_buyers", now: now) == ["u_ben", "u_eli", "u_fay", "u_jade"])
        #expect(oracle.members("signup_to_order_7d", now: now) == ["u_cleo", "u_ivan"])
    }

    @Test func demoComputedTrait() throws {
        let values = try Self.demo().values("total_spent_90_days", now: Self.demoNow)
        let expected: [String: Double] = [
            "u_ada": 200.5, "u_ben": 19.99, "u_cleo": 49, "u_dev": 150, "u_eli": 75, "u_fay": 60, "u_gus": 35,
            "u_hana": 89.9, "u_ivan": 210,
        ]
        #expect(Set(values.keys) == Set(expected.keys))
        for (user, value) in expected {
            #expect(values[user].flatMap(\.doubleValue).map { abs($0 - value) < 1e-9 } == true, "\(user)")
        }
    }

    /// EVENTS.md, "Two and a half hours later": both files ingested, now = 14:30.
    @Test func demoLater() throws {
        let folder = repositoryRoot + "/fixtures/demo"
        let text =
            try String(contentsOfFile: folder + "/events.ndjson", encoding: .utf8) + "\n"
            + String(contentsOfFile: folder + "/events-later.ndjson", encoding: .utf8)
        let base = try Self.demo()
        let oracle = ReferenceEvaluator(
            messages: ReferenceEvaluator.messages(ndjson: text), definitions: base.definitions)
        let now = Timestamp.parse("2026-11-22T14:30:00Z")!
        #expect(oracle.members("nps_detractors", now: now) == ["u_ben", "u_dev", "u_hana", "u_kai", "u_lea"])
        #expect(
            oracle.members("order_completed_last_30days", now: now)
                == ["u_ada", "u_ben", "u_cleo", "u_dev", "u_gus", "u_hana", "u_ivan", "u_kai"])
        #expect(oracle.members("engaged_non_buyers", now: now) == ["u_eli", "u_fay", "u_jade", "u_max"])
        #expect(oracle.members("signup_to_order_7d", now: now) == ["u_cleo", "u_ivan"])
        let values = oracle.values("total_spent_90_days", now: now)
        #expect(values["u_ben"].flatMap(\.doubleValue).map { abs($0 - 78.99) < 1e-9 } == true)
        #expect(values["u_cleo"].flatMap(\.doubleValue).map { abs($0 - 64.5) < 1e-9 } == true)
        #expect(values["u_dev"].flatMap(\.doubleValue) == 150)
    }
}
