import Foundation
import Testing

@testable import AudienceSync

/// SPEC §3.2: users, links from anonymous ids, and traits, all as of a time `now`.
@Suite struct IdentityTests {
    /// `2026-11-DDT12:00:00Z`: day `d` of the test month.
    private static func day(_ d: Int) -> String { "2026-11-\(d < 10 ? "0" : "")\(d)T12:00:00Z" }
    private static func at(_ d: Int) -> Int64 { Timestamp.parse(day(d))! }

    private static func track(_ id: String, day d: Int, userId: String? = nil, anonymousId: String? = nil) -> String {
        var fields = [#""type":"track""#, #""event":"E""#, #""messageId":"\#(id)""#, #""timestamp":"\#(day(d))""#]
        if let userId { fields.append(#""userId":"\#(userId)""#) }
        if let anonymousId { fields.append(#""anonymousId":"\#(anonymousId)""#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private static func identify(
        _ id: String, day d: Int, userId: String? = nil, anonymousId: String? = nil, traits: String
    ) -> String {
        var fields = [
            #""type":"identify""#, #""messageId":"\#(id)""#, #""timestamp":"\#(day(d))""#, #""traits":\#(traits)"#,
        ]
        if let userId { fields.append(#""userId":"\#(userId)""#) }
        if let anonymousId { fields.append(#""anonymousId":"\#(anonymousId)""#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private static func alias(_ id: String, day d: Int, userId: String, previousId: String) -> String {
        #"{"type":"alias","messageId":"\#(id)","timestamp":"\#(day(d))","userId":"\#(userId)","previousId":"\#(previousId)"}"#
    }

    @Test func bothIdsOnOneMessageLinkThem() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [IdentityTests.track("m1", day: 5, userId: "u1", anonymousId: "a1")])
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: ingestNow) == "u1")
        await #expect(try harness.store.linkedUser(anonymousId: "u1", now: ingestNow) == nil)
        await #expect(try harness.store.linkedUser(anonymousId: "a2", now: ingestNow) == nil)
    }

    @Test func aliasLinksPreviousIdToUserId() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.track("m1", day: 3, anonymousId: "a1"),
            IdentityTests.alias("m2", day: 5, userId: "u1", previousId: "a1"),
        ])
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: ingestNow) == "u1")
        await #expect(try harness.store.users(now: ingestNow) == ["u1"])
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: ingestNow) == 0)
    }

    /// A message whose anonymousId is its userId links nothing.
    @Test func anIdIsNotLinkedToItself() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [IdentityTests.track("m1", day: 5, userId: "u1", anonymousId: "u1")])
        await #expect(try harness.scalar("SELECT count(*) FROM identity_links") == .integer(0))
    }

    /// Anonymous events before the link count for the user once the link exists — and not before.
    @Test func eventsBeforeTheLinkCountOnceItExists() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.track("visit", day: 2, anonymousId: "a1"),
            IdentityTests.track("order", day: 3, anonymousId: "a1"),
            IdentityTests.identify("signup", day: 6, userId: "u1", anonymousId: "a1", traits: "{}"),
        ])
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(4)) == nil)
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(4)) == 2)
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(6)) == "u1")
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(6)) == 0)
        // The events themselves keep their anonymous identity; the link is what makes them the user's.
        await #expect(
            try harness.scalar("SELECT count(*) FROM events WHERE user_id IS NULL AND anonymous_id = 'a1'")
                == .integer(2))
    }

    /// An anonymous id linked to two users belongs to the earliest link by event time — whatever
    /// the order of ingest, in one run or several.
    @Test(arguments: [false, true])
    func theEarliestLinkWins(separateRuns: Bool) async throws {
        let harness = try await IngestHarness()
        let lines = [
            IdentityTests.track("late-u1", day: 9, userId: "u1", anonymousId: "a1"),
            IdentityTests.track("mid-u2", day: 5, userId: "u2", anonymousId: "a1"),
            // The same pair again, earlier: the u1 link now dates from day 3.
            IdentityTests.alias("early-u1", day: 3, userId: "u1", previousId: "a1"),
        ]
        if separateRuns {
            for line in lines { _ = try await harness.ingest(lines: [line]) }
        } else {
            _ = try await harness.ingest(lines: lines)
        }
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(2)) == nil)
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(4)) == "u1")
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(6)) == "u1")
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: ingestNow) == "u1")
        await #expect(
            try harness.rows("SELECT user_id, ts, message_id FROM identity_links ORDER BY user_id") == [
                [.text("u1"), .integer(IdentityTests.at(3)), .text("early-u1")],
                [.text("u2"), .integer(IdentityTests.at(5)), .text("mid-u2")],
            ])
    }

    /// Links at the same event time: the smaller messageId wins.
    @Test(arguments: [false, true])
    func tiesGoToTheSmallerMessageId(reversed: Bool) async throws {
        let harness = try await IngestHarness()
        var lines = [
            IdentityTests.track("msg-b", day: 5, userId: "u1", anonymousId: "a1"),
            IdentityTests.track("msg-a", day: 5, userId: "u2", anonymousId: "a1"),
        ]
        if reversed { lines.reverse() }
        _ = try await harness.ingest(lines: lines)
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: ingestNow) == "u2")
    }

    /// A link after now does not exist yet; until then an earlier-starting one may hold.
    @Test func linksAfterNowDoNotExistYet() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.track("m1", day: 2, anonymousId: "a1"),
            IdentityTests.track("m2", day: 8, userId: "u1", anonymousId: "a1"),
        ])
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(8) - 1) == nil)
        await #expect(try harness.store.linkedUser(anonymousId: "a1", now: IdentityTests.at(8)) == "u1")
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(8) - 1) == 1)
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(8)) == 0)
    }

    /// Users are the userIds seen with event time ≤ now — not anonymous ids, not alias previousIds.
    @Test func usersAreUserIdsSeenByNow() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.track("m1", day: 2, userId: "u_b"),
            IdentityTests.track("m2", day: 4, anonymousId: "a1"),
            IdentityTests.alias("m3", day: 5, userId: "u_a", previousId: "a1"),
            IdentityTests.identify("m4", day: 9, userId: "u_c", traits: "{}"),
        ])
        await #expect(try harness.store.users(now: IdentityTests.at(1)) == [])
        await #expect(try harness.store.users(now: IdentityTests.at(2)) == ["u_b"])
        await #expect(try harness.store.users(now: IdentityTests.at(5)) == ["u_a", "u_b"])
        await #expect(try harness.store.users(now: ingestNow) == ["u_a", "u_b", "u_c"])
        // An earlier message of u_c in a later run moves its first appearance.
        _ = try await harness.ingest(lines: [IdentityTests.track("m5", day: 3, userId: "u_c")])
        await #expect(try harness.store.users(now: IdentityTests.at(5)) == ["u_a", "u_b", "u_c"])
        // A later one does not.
        _ = try await harness.ingest(lines: [IdentityTests.track("m6", day: 20, userId: "u_b")])
        await #expect(try harness.store.users(now: IdentityTests.at(2)) == ["u_b"])
    }

    @Test func unlinkedAnonymousEventsCountUpToNow() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.track("m1", day: 2, anonymousId: "visitor"),
            IdentityTests.track("m2", day: 3, anonymousId: "visitor"),
            IdentityTests.track("m3", day: 9, anonymousId: "visitor"),
            IdentityTests.track("m4", day: 3, anonymousId: "a1"),
            IdentityTests.alias("m5", day: 4, userId: "u1", previousId: "a1"),
            IdentityTests.track("m6", day: 3, userId: "u2"),
        ])
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(1)) == 0)
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(3)) == 3)
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: IdentityTests.at(4)) == 2)
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: ingestNow) == 3)
    }

    // MARK: Traits

    /// Later identifies win key by key; nested objects are replaced whole; identifies of a linked
    /// anonymous id count; identifies after now do not; types are kept.
    @Test func traitsMergeInEventTimeOrder() async throws {
        let harness = try await IngestHarness()
        // Ingested out of order on purpose: event time decides, not arrival.
        _ = try await harness.ingest(lines: [
            IdentityTests.identify(
                "i3", day: 7, userId: "u1", traits: #"{"plan":"pro","company":{"name":"Acme"},"vip":false}"#),
            IdentityTests.identify(
                "i1", day: 2, anonymousId: "a1",
                traits: #"{"email":"ada@example.org","plan":"free","company":{"name":"Old","size":5},"seats":3}"#),
            IdentityTests.identify("i2", day: 4, userId: "u1", anonymousId: "a1", traits: #"{"vip":true,"score":2.5}"#),
            IdentityTests.identify("i4", day: 30, userId: "u1", traits: #"{"plan":"enterprise"}"#),
        ])
        let traits = try await harness.store.traits(userId: "u1", now: ingestNow)
        let expected = try JSONValue.parse(
            #"{"company":{"name":"Acme"},"email":"ada@example.org","plan":"pro","score":2.5,"seats":3,"vip":false}"#)
        #expect(
            traits.map { String(decoding: $0.canonicalBytes, as: UTF8.self) }
                == String(decoding: expected.canonicalBytes, as: UTF8.self))
        #expect(traits?["vip"] == .bool(false))
        #expect(traits?["seats"] == .number("3"))

        // Earlier: only what existed then.
        let before = try await harness.store.traits(userId: "u1", now: IdentityTests.at(4))
        #expect(before?["plan"] == .string("free"))
        #expect(before?["vip"] == .bool(true))
        #expect(before?["company"] == .object(["name": .string("Old"), "size": .int(5)]))
        // Before the anonymous id is linked, its identify is no one's.
        await #expect(try harness.store.traits(userId: "u1", now: IdentityTests.at(3)) == nil)
        // After the future identify exists.
        await #expect(try harness.store.traits(userId: "u1", now: IdentityTests.at(30))?["plan"] == .string("enterprise"))
    }

    @Test(arguments: [false, true])
    func traitTiesGoToTheLargerMessageIdAsTheLater(reversed: Bool) async throws {
        let harness = try await IngestHarness()
        var lines = [
            IdentityTests.identify("id-a", day: 5, userId: "u1", traits: #"{"plan":"free","a":1}"#),
            IdentityTests.identify("id-b", day: 5, userId: "u1", traits: #"{"plan":"pro","b":2}"#),
        ]
        if reversed { lines.reverse() }
        _ = try await harness.ingest(lines: lines)
        let traits = try await harness.store.traits(userId: "u1", now: ingestNow)
        #expect(traits?["plan"] == .string("pro"))
        #expect(traits?["a"] == .int(1))
        #expect(traits?["b"] == .int(2))
    }

    /// An anonymous id whose earliest link is to another user gives this user none of its traits.
    @Test func traitsOfAnAnonymousIdGoToTheUserItIsLinkedTo() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            IdentityTests.identify("i1", day: 2, anonymousId: "a1", traits: #"{"email":"shared@example.org"}"#),
            IdentityTests.track("m1", day: 3, userId: "u1", anonymousId: "a1"),
            IdentityTests.track("m2", day: 4, userId: "u2", anonymousId: "a1"),
            IdentityTests.identify("i2", day: 5, userId: "u2", traits: #"{"plan":"pro"}"#),
        ])
        await #expect(
            try harness.store.traits(userId: "u1", now: ingestNow) == .object(["email": .string("shared@example.org")]))
        await #expect(try harness.store.traits(userId: "u2", now: ingestNow) == .object(["plan": .string("pro")]))
    }

    /// Only identify traits count: not a track's, not `context.traits`, and not a traits value that is no object.
    @Test func onlyIdentifyTraitObjectsCount() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            #"{"type":"track","event":"E","userId":"u1","messageId":"t1","timestamp":"2026-11-02T00:00:00Z","traits":{"plan":"track"}}"#,
            #"{"type":"identify","userId":"u1","messageId":"i1","timestamp":"2026-11-03T00:00:00Z","traits":"pro"}"#,
            #"{"type":"identify","userId":"u1","messageId":"i2","timestamp":"2026-11-04T00:00:00Z","context":{"traits":{"plan":"ctx"}}}"#,
            #"{"type":"group","userId":"u1","groupId":"g","messageId":"g1","timestamp":"2026-11-05T00:00:00Z","traits":{"plan":"group"}}"#,
        ])
        await #expect(try harness.store.traits(userId: "u1", now: ingestNow) == nil)
        _ = try await harness.ingest(lines: [
            #"{"type":"identify","userId":"u1","messageId":"i3","timestamp":"2026-11-06T00:00:00Z","traits":{"plan":"pro","note":"{\"x\":1}","gone":null,"tags":["a","b"]}}"#
        ])
        let traits = try await harness.store.traits(userId: "u1", now: ingestNow)
        #expect(traits?["plan"] == .string("pro"))
        #expect(traits?["note"] == .string(#"{"x":1}"#))
        #expect(traits?["gone"] == .null)
        #expect(traits?["tags"] == .array([.string("a"), .string("b")]))
    }

    /// The demo's story (fixtures/demo/EVENTS.md): u_hana's guest order, u_ivan's alias, u_jade's plan change.
    @Test func demoIdentities() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(
            paths: [repositoryRoot + "/fixtures/demo/events.ndjson"], options: IngestOptions(now: ingestNow))
        let store = harness.store
        await #expect(try store.linkedUser(anonymousId: "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d08", now: ingestNow) == "u_hana")
        await #expect(try store.linkedUser(anonymousId: "9e7d3c2b-4f1a-4b8c-8d6e-5a4b3c2d1e0f", now: ingestNow) == nil)
        await #expect(try store.traits(userId: "u_jade", now: ingestNow)?["plan"] == .string("pro"))
        await #expect(
            try store.users(now: ingestNow) == [
                "u_ada", "u_ben", "u_cleo", "u_dev", "u_eli", "u_fay", "u_gus", "u_hana", "u_ivan", "u_jade", "u_kai",
                "u_lea",
            ])
    }
}
