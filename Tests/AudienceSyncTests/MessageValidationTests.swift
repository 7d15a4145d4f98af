import Foundation
import Testing

@testable import AudienceSync

/// One input line and what ingest must make of it: stored, or rejected with exactly this reason.
struct MessageCase: Sendable, CustomTestStringConvertible {
    var line: String
    /// nil: the line is stored.
    var reason: String?

    static func good(_ line: String) -> MessageCase { MessageCase(line: line, reason: nil) }
    static func bad(_ line: String, _ reason: String) -> MessageCase { MessageCase(line: line, reason: reason) }

    var testDescription: String { (reason == nil ? "good: " : "bad: ") + String(line.prefix(100)) }
}

private let types = "track, identify, page, screen, group, alias"
private let noIdentity = "no identity: a non-empty string 'userId' or 'anonymousId' is required"
private let trackNeedsEvent = "a track needs a non-empty string 'event'"
private let aliasNeedsIds = "an alias needs a non-empty string 'userId' and 'previousId'"

private func badTime(_ field: String, _ shown: String) -> String {
    "'\(field)' is not an ISO-8601 time with a zone, like 2026-11-22T12:00:00.000Z (got \(shown))"
}

/// `{"a":{"a":...{}...}}` nested `depth` objects deep.
private func nested(_ depth: Int) -> String {
    String(repeating: "{\"a\":", count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
}

private let timestampFields = ["timestamp", "originalTimestamp", "receivedAt", "sentAt"]

/// Every timestamp field with good and bad values.
private let timestampCases: [MessageCase] = timestampFields.flatMap { field -> [MessageCase] in
    let message = { (value: String) in #"{"type":"track","event":"E","userId":"u1",""# + field + #"":"# + value + "}" }
    return [
        .good(message(#""2026-11-22T12:00:00Z""#)),
        .good(message(#""2026-11-22T12:00:00.123Z""#)),
        .good(message(#""2026-11-22T12:00:00.123456+00:00""#)),
        .good(message(#""2026-11-22T14:00:00+02:00""#)),
        .good(message(#""2026-11-22T07:30:00.5-0430""#)),
        .good(message("null")),  // null is absent
        .bad(message(#""yesterday""#), badTime(field, "'yesterday'")),
        .bad(message("1795348800000"), badTime(field, "a number")),
        .bad(message(#""1795348800000""#), badTime(field, "'1795348800000'")),
        .bad(message(#""2026-11-22T12:00:00""#), badTime(field, "'2026-11-22T12:00:00'")),
        .bad(message(#""2026-11-22T12:00:00.123""#), badTime(field, "'2026-11-22T12:00:00.123'")),
        .bad(message(#""2026-11-22""#), badTime(field, "'2026-11-22'")),
        .bad(message(#""2026-02-30T12:00:00Z""#), badTime(field, "'2026-02-30T12:00:00Z'")),
        .bad(message(#""""#), badTime(field, "''")),
        .bad(message("true"), badTime(field, "a boolean")),
        .bad(message("{}"), badTime(field, "an object")),
    ]
}

private let typeCases: [MessageCase] = [
    // Every type, valid.
    .good(#"{"type":"track","event":"Order Completed","userId":"u1"}"#),
    .good(#"{"type":"track","event":"Viewed","anonymousId":"a1"}"#),
    .good(#"{"type":"identify","userId":"u1","traits":{"plan":"pro"}}"#),
    .good(#"{"type":"identify","anonymousId":"a1"}"#),
    .good(#"{"type":"page","userId":"u1","name":"Pricing"}"#),
    .good(#"{"type":"page","anonymousId":"a1"}"#),
    .good(#"{"type":"screen","userId":"u1","name":"Home"}"#),
    .good(#"{"type":"screen","anonymousId":"a1"}"#),
    .good(#"{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme"}}"#),
    .good(#"{"type":"alias","userId":"u1","previousId":"a1"}"#),
    // Every type, invalid (no identity).
    .bad(#"{"type":"track","event":"E"}"#, noIdentity),
    .bad(#"{"type":"identify","traits":{}}"#, noIdentity),
    .bad(#"{"type":"page","name":"Pricing"}"#, noIdentity),
    .bad(#"{"type":"screen","name":"Home"}"#, noIdentity),
    .bad(#"{"type":"group","groupId":"g1"}"#, noIdentity),
    .bad(#"{"type":"alias","previousId":"a1"}"#, aliasNeedsIds),
    // type itself
    .bad(#"{"userId":"u1","event":"E"}"#, "missing 'type' (expected one of \(types))"),
    .bad(#"{"type":null,"userId":"u1"}"#, "missing 'type' (expected one of \(types))"),
    .bad(#"{"type":"purchase","userId":"u1"}"#, "unknown type 'purchase' (expected one of \(types))"),
    .bad(#"{"type":"Track","event":"E","userId":"u1"}"#, "unknown type 'Track' (expected one of \(types))"),
    .bad(#"{"type":"","userId":"u1"}"#, "unknown type '' (expected one of \(types))"),
    .bad(#"{"type":7,"userId":"u1"}"#, "'type' must be a string (got a number)"),
    .bad(#"{"type":["track"],"userId":"u1"}"#, "'type' must be a string (got an array)"),
    .good(#"{"\u0074ype":"track","event":"E","userId":"u1"}"#),  // an escaped key is the same key
]

private let identityCases: [MessageCase] = [
    // null, missing, empty, number — for each id.
    .good(#"{"type":"track","event":"E","userId":"u1","anonymousId":null}"#),
    .good(#"{"type":"track","event":"E","userId":"u1","anonymousId":""}"#),
    .good(#"{"type":"track","event":"E","userId":null,"anonymousId":"a1"}"#),
    .good(#"{"type":"track","event":"E","userId":"","anonymousId":"a1"}"#),
    .bad(#"{"type":"track","event":"E","userId":null,"anonymousId":null}"#, noIdentity),
    .bad(#"{"type":"track","event":"E","userId":"","anonymousId":""}"#, noIdentity),
    .bad(#"{"type":"track","event":"E","userId":null}"#, noIdentity),
    .bad(#"{"type":"track","event":"E","anonymousId":""}"#, noIdentity),
    .bad(#"{"type":"track","event":"E","userId":42}"#, "'userId' must be a string (got a number)"),
    .bad(
        #"{"type":"track","event":"E","userId":"u1","anonymousId":42}"#, "'anonymousId' must be a string (got a number)"
    ),
    .bad(#"{"type":"track","event":"E","userId":{"id":"u1"}}"#, "'userId' must be a string (got an object)"),
    // JSON true and false are booleans, never numbers (nor ids).
    .bad(#"{"type":"track","event":"E","userId":true}"#, "'userId' must be a string (got a boolean)"),
    .bad(#"{"type":"track","event":"E","anonymousId":false}"#, "'anonymousId' must be a string (got a boolean)"),
    // Duplicate keys of the fields that decide validity and identity.
    .bad(#"{"type":"track","event":"E","userId":"u1","userId":"u2"}"#, "duplicate field 'userId'"),
    .bad(#"{"type":"track","event":"E","userId":"u1","\u0075serId":"u2"}"#, "duplicate field 'userId'"),
    .bad(#"{"type":"track","type":"identify","event":"E","userId":"u1"}"#, "duplicate field 'type'"),
    .bad(#"{"type":"track","event":"E","userId":"u1","userId":null}"#, "duplicate field 'userId'"),
    .bad(#"{"type":"track","event":"E","userId":null,"userId":"u1"}"#, "duplicate field 'userId'"),
    // track and event
    .bad(#"{"type":"track","userId":"u1"}"#, trackNeedsEvent),
    .bad(#"{"type":"track","event":"","userId":"u1"}"#, trackNeedsEvent),
    .bad(#"{"type":"track","event":null,"userId":"u1"}"#, trackNeedsEvent),
    .bad(#"{"type":"track","event":42,"userId":"u1"}"#, "'event' must be a string (got a number)"),
    .bad(#"{"type":"track","event":true,"userId":"u1"}"#, "'event' must be a string (got a boolean)"),
    // alias
    .bad(#"{"type":"alias","userId":"u1"}"#, aliasNeedsIds),
    .bad(#"{"type":"alias","userId":"u1","previousId":""}"#, aliasNeedsIds),
    .bad(#"{"type":"alias","userId":"u1","previousId":null}"#, aliasNeedsIds),
    .bad(#"{"type":"alias","anonymousId":"a1","previousId":"a0"}"#, aliasNeedsIds),
    .bad(#"{"type":"alias","userId":"u1","previousId":7}"#, "'previousId' must be a string (got a number)"),
    // messageId is the deduplication key: a string, or absent.
    .good(#"{"type":"track","event":"E","userId":"u1","messageId":null}"#),
    .bad(#"{"type":"track","event":"E","userId":"u1","messageId":12}"#, "'messageId' must be a string (got a number)"),
]

private let documentCases: [MessageCase] = [
    .bad(#"{"type":"track","event":"E","userId":"u1""#, "not valid JSON: unterminated object at column 42"),
    .bad(#"{"type":"track","event":"E","timestamp":"2026-11-"#, "not valid JSON: unterminated string at column 50"),
    .bad(#"{type:"track"}"#, "not valid JSON: expected a quoted key at column 2"),
    .bad(
        #"{"type":"track","event":"E","userId":"u1"} trailing"#,
        "not valid JSON: unexpected text after the JSON value at column 44"),
    .bad(#"[{"type":"track","event":"E","userId":"u1"}]"#, "not a JSON object (got an array)"),
    .bad(#""track""#, "not a JSON object (got a string)"),
    .bad("42", "not a JSON object (got a number)"),
    .bad("true", "not a JSON object (got a boolean)"),
    .bad("null", "not a JSON object (got null)"),
    // Deep nesting: allowed up to the limit, refused beyond it (not a crash).
    .good(#"{"type":"track","event":"E","userId":"u1","properties":"# + nested(200) + "}"),
    .bad(
        #"{"type":"track","event":"E","userId":"u1","properties":"# + nested(300) + "}",
        "not valid JSON: nested too deeply at column \(56 + 5 * 255)"),
    // Values of every JSON kind in properties are kept.
    .good(
        #"{"type":"track","event":"E","userId":"u1","properties":{"b":true,"n":null,"x":-1.5e3,"s":"é","a":[1,"2",false]}}"#
    ),
]

@Suite struct MessageValidationTests {
    static let cases = typeCases + identityCases + timestampCases + documentCases

    @Test(arguments: cases)
    func message(_ testCase: MessageCase) async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(testCase.line + "\n")
        if let reason = testCase.reason {
            #expect(summary.accepted == 0)
            #expect(summary.rejected == 1)
            #expect(summary.errors.map(\.reason) == [reason])
            #expect(summary.errors.first?.line == 1)
            await #expect(try harness.store.eventCount() == 0)
        } else {
            #expect(summary.errors.map(\.reason) == [])
            #expect(summary.accepted == 1)
            await #expect(try harness.store.eventCount() == 1)
        }
    }

    /// A null or empty id is absent: the row holds NULL, never "" or "null".
    @Test func nullAndEmptyIdsAreStoredAsAbsent() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(lines: [
            #"{"type":"track","event":"E","userId":"u1","anonymousId":null,"messageId":"m1"}"#,
            #"{"type":"track","event":"E","userId":"","anonymousId":"a1","messageId":"m2"}"#,
        ])
        #expect(summary.accepted == 2)
        #expect(summary.anonymous == 1)
        let rows = try await harness.rows("SELECT message_id, user_id, anonymous_id FROM events ORDER BY message_id")
        #expect(rows == [[.text("m1"), .text("u1"), .null], [.text("m2"), .null, .text("a1")]])
        // The message itself keeps what the client sent.
        await #expect(try harness.message("m1")?["anonymousId"] == .null)
    }

    @Test(
        arguments: [
            [0xC3, 0x28],  // a lead byte without its continuation
            [0xFF],  // never valid in UTF-8
            [0xC0, 0xAF],  // an overlong "/"
            [0xED, 0xA0, 0x80],  // an encoded surrogate
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
        ] as [[UInt8]])
    func invalidUTF8IsRejected(sequence: [UInt8]) async throws {
        let harness = try await IngestHarness()
        let prefix = Array(#"{"type":"track","event":"E","userId":"u1","properties":{"name":""#.utf8)
        let line = prefix + sequence + Array(#""}}"#.utf8) + [0x0A]
        let summary = try await harness.ingest(bytes: line)
        #expect(summary.rejected == 1)
        #expect(summary.errors.map(\.reason) == ["not valid JSON: invalid UTF-8 at column \(prefix.count + 1)"])
        await #expect(try harness.store.eventCount() == 0)
    }

    @Test func validUTF8IsStoredByteForByte() async throws {
        let harness = try await IngestHarness()
        let line = #"{"type":"track","event":"Café ☕ 😀","userId":"ü","messageId":"m1","properties":{"q":"\"\\\u00e9"}}"#
        await #expect(try harness.ingest(line + "\n").accepted == 1)
        await #expect(try harness.scalar("SELECT message FROM events")?.string == line)
        await #expect(try harness.scalar("SELECT event FROM events")?.string == "Café ☕ 😀")
        await #expect(try harness.scalar("SELECT json_extract(message, '$.properties.q') FROM events")?.string == "\"\\é")
    }

    /// Fields this program does not know are kept as they are: the stored message is the line.
    @Test func unknownFieldsAreKeptAsSent() async throws {
        let harness = try await IngestHarness()
        let line =
            #"{"type":"track","event":"E","userId":"u1","messageId":"m1","integrations":{"All":false,"Mixpanel":true},"_metadata":{"bundled":["Segment.io"],"unbundled":[]},"custom":{"deep":[1,{"x":null}]},"version":2,"channel":"server","flag":true}"#
        await #expect(try harness.ingest(line + "\n").accepted == 1)
        await #expect(try harness.scalar("SELECT message FROM events")?.string == line)
        let extracted = try await harness.rows(
            """
            SELECT json_extract(message, '$.integrations.Mixpanel'), json_type(message, '$.integrations.All'),
                   json_extract(message, '$._metadata.bundled[0]'), json_type(message, '$.custom.deep[1].x'),
                   json_extract(message, '$.version'), json_type(message, '$.flag'), json_extract(message, '$.channel')
            FROM events
            """)
        #expect(
            extracted == [
                [
                    .integer(1), .text("false"), .text("Segment.io"), .text("null"), .integer(2), .text("true"),
                    .text("server"),
                ]
            ])
    }

    /// Stored columns: the type, the ids, and the event name of a track or the name of a page/screen.
    @Test func columnsHoldTheTypeIdsAndName() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            #"{"type":"track","event":"Order Completed","userId":"u1","messageId":"m1"}"#,
            #"{"type":"page","name":"Pricing","anonymousId":"a1","messageId":"m2"}"#,
            #"{"type":"screen","name":"Home","userId":"u1","anonymousId":"a1","messageId":"m3"}"#,
            #"{"type":"identify","userId":"u1","messageId":"m4","event":"ignored"}"#,
            #"{"type":"alias","userId":"u1","previousId":"a1","messageId":"m5"}"#,
        ])
        let rows = try await harness.rows(
            "SELECT message_id, type, user_id, anonymous_id, event FROM events ORDER BY message_id")
        #expect(
            rows == [
                [.text("m1"), .text("track"), .text("u1"), .null, .text("Order Completed")],
                [.text("m2"), .text("page"), .null, .text("a1"), .text("Pricing")],
                [.text("m3"), .text("screen"), .text("u1"), .text("a1"), .text("Home")],
                [.text("m4"), .text("identify"), .text("u1"), .null, .null],
                [.text("m5"), .text("alias"), .text("u1"), .null, .null],
            ])
    }
}
