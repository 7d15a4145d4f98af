import Crypto
import Foundation
import Testing

@testable import AudienceSync

@Suite struct EventTimeTests {
    struct TimeCase: Sendable, CustomTestStringConvertible {
        var fields: String
        var expected: String
        var testDescription: String { fields }
    }

    /// timestamp, else originalTimestamp, else receivedAt, else sentAt, else the ingest time.
    @Test(arguments: [
        TimeCase(
            fields:
                #""timestamp":"2026-11-01T00:00:00Z","originalTimestamp":"2026-11-02T00:00:00Z","receivedAt":"2026-11-03T00:00:00Z","sentAt":"2026-11-04T00:00:00Z""#,
            expected: "2026-11-01T00:00:00Z"),
        TimeCase(
            fields:
                #""sentAt":"2026-11-04T00:00:00Z","receivedAt":"2026-11-03T00:00:00Z","originalTimestamp":"2026-11-02T00:00:00Z","timestamp":"2026-11-01T00:00:00Z""#,
            expected: "2026-11-01T00:00:00Z"),
        TimeCase(
            fields:
                #""originalTimestamp":"2026-11-02T00:00:00Z","receivedAt":"2026-11-03T00:00:00Z","sentAt":"2026-11-04T00:00:00Z""#,
            expected: "2026-11-02T00:00:00Z"),
        TimeCase(
            fields: #""timestamp":null,"receivedAt":"2026-11-03T00:00:00Z","sentAt":"2026-11-04T00:00:00Z""#,
            expected: "2026-11-03T00:00:00Z"),
        TimeCase(fields: #""sentAt":"2026-11-04T00:00:00Z""#, expected: "2026-11-04T00:00:00Z"),
        TimeCase(fields: #""timestamp":null,"sentAt":null"#, expected: "2026-11-22T12:00:00Z"),
        TimeCase(fields: #""properties":{}"#, expected: "2026-11-22T12:00:00Z"),
        // Offsets and fractions are stored as UTC milliseconds; digits beyond milliseconds are dropped.
        TimeCase(fields: #""timestamp":"2026-11-22T14:00:00.123+02:00""#, expected: "2026-11-22T12:00:00.123Z"),
        TimeCase(fields: #""timestamp":"2026-11-22T07:30:00-0430""#, expected: "2026-11-22T12:00:00Z"),
        TimeCase(fields: #""timestamp":"2026-11-22T12:00:00.123456+00:00""#, expected: "2026-11-22T12:00:00.123Z"),
        TimeCase(fields: #""timestamp":"2026-11-23T01:30:00.9+13:30""#, expected: "2026-11-22T12:00:00.900Z"),
    ])
    func eventTimePrecedence(_ testCase: TimeCase) async throws {
        let harness = try await IngestHarness()
        let line = #"{"type":"track","event":"E","userId":"u1","messageId":"m1","# + testCase.fields + "}"
        await #expect(try harness.ingest(line + "\n").accepted == 1)
        await #expect(try harness.eventTime("m1") == millis(testCase.expected))
        // The ingest time is recorded separately.
        await #expect(try harness.scalar("SELECT received_at FROM events")?.int64 == ingestNow)
    }

    /// The envelope's sentAt stands in for a message's missing sentAt, so it comes after the message's own times.
    @Test func envelopeSentAtIsTheLastResortBeforeIngestTime() async throws {
        let harness = try await IngestHarness()
        let envelope = #"""
            {"batch":[{"type":"track","event":"E","userId":"u1","messageId":"own-timestamp","timestamp":"2026-11-01T00:00:00Z"},{"type":"track","event":"E","userId":"u1","messageId":"own-received","receivedAt":"2026-11-03T00:00:00Z"},{"type":"track","event":"E","userId":"u1","messageId":"own-sent","sentAt":"2026-11-05T00:00:00Z"},{"type":"track","event":"E","userId":"u1","messageId":"nothing"}],"sentAt":"2026-11-04T00:00:00+01:00"}
            """#
        await #expect(try harness.ingest(envelope + "\n").accepted == 4)
        await #expect(try harness.eventTime("own-timestamp") == millis("2026-11-01T00:00:00Z"))
        await #expect(try harness.eventTime("own-received") == millis("2026-11-03T00:00:00Z"))
        await #expect(try harness.eventTime("own-sent") == millis("2026-11-05T00:00:00Z"))
        await #expect(try harness.eventTime("nothing") == millis("2026-11-03T23:00:00Z"))
    }

    @Test func messagesWithoutTimeTakeTheIngestTimeGiven() async throws {
        let harness = try await IngestHarness()
        let now = millis("2030-01-02T03:04:05.678Z")
        _ = try await harness.ingest(#"{"type":"identify","userId":"u1","messageId":"m1"}"# + "\n", now: now)
        await #expect(try harness.eventTime("m1") == now)
    }
}

@Suite struct DeduplicationTests {
    @Test func sameMessageIdTwiceInOneFileKeepsTheFirst() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(lines: [
            #"{"type":"track","event":"First","userId":"u1","messageId":"m1"}"#,
            #"{"type":"track","event":"Second","userId":"u2","messageId":"m1"}"#,
            #"{"type":"track","event":"Other","userId":"u1","messageId":"m2"}"#,
        ])
        #expect(summary.accepted == 2)
        #expect(summary.duplicates == 1)
        #expect(summary.rejected == 0)
        await #expect(try harness.scalar("SELECT event FROM events WHERE message_id = 'm1'") == .text("First"))
    }

    @Test func sameMessageIdAcrossRunsIsADuplicate() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(#"{"type":"track","event":"E","userId":"u1","messageId":"m1"}"# + "\n")
        let second = try await harness.ingest(
            #"{"type":"track","event":"Changed","userId":"u1","messageId":"m1"}"# + "\n"
                + #"{"type":"track","event":"E","userId":"u1","messageId":"m2"}"# + "\n")
        #expect(second.accepted == 1)
        #expect(second.duplicates == 1)
        await #expect(try harness.store.eventCount() == 2)
        await #expect(try harness.scalar("SELECT event FROM events WHERE message_id = 'm1'") == .text("E"))
    }

    /// Ingesting the same file twice stores nothing new, also for messages without messageId
    /// and across the transaction boundary.
    @Test(arguments: [2, 100_000])
    func ingestingTheSameFileTwiceStoresNothingNew(transactionSize: Int) async throws {
        let harness = try await IngestHarness()
        let text = [
            #"{"type":"identify","userId":"u1","traits":{"plan":"pro"}}"#,
            #"{"type":"track","event":"E","userId":"u1","messageId":"m1"}"#,
            #"{"type":"page","anonymousId":"a1","name":"Home"}"#,
            #"{"batch":[{"type":"track","event":"E","userId":"u2"},{"type":"track","event":"F","userId":"u2"}],"sentAt":"2026-11-01T00:00:00Z"}"#,
            "not json",
            #"{"type":"screen","userId":"u3","anonymousId":"a3"}"#,
        ].map { $0 + "\n" }.joined()
        let path = try harness.input(Array(text.utf8))
        var options = IngestOptions(now: ingestNow)
        options.transactionSize = transactionSize
        let first = try await harness.ingest(paths: [path], options: options)
        #expect((first.accepted, first.duplicates, first.rejected, first.anonymous) == (6, 0, 1, 1))
        let ids = try await harness.messageIds()
        let second = try await harness.ingest(paths: [path], options: options)
        #expect((second.accepted, second.duplicates, second.rejected, second.anonymous) == (0, 6, 1, 0))
        await #expect(try harness.messageIds() == ids)
    }

    @Test func derivedIdsIgnoreKeyOrderAndWhitespace() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(lines: [
            #"{"type":"track","event":"E","userId":"u1","properties":{"a":1,"b":[1,2]}}"#,
            #"{ "properties" : { "b" : [ 1 , 2 ] , "a" : 1 } , "userId" : "u1" , "event" : "E" , "type" : "track" }"#,
            "\t{\"userId\":\"u1\",\"type\":\"track\",\"event\":\"E\",\"properties\":{\"a\":1,\"b\":[1,2]}}  ",
            // Escapes that decode to the same text are the same content.
            #"{"type":"tr\u0061ck","event":"E","userId":"u\u0031","properties":{"a":1,"b":[1,2]}}"#,
        ])
        #expect(summary.accepted == 1)
        #expect(summary.duplicates == 3)
        let id = try await #require(try harness.messageIds().first)
        #expect(id.hasPrefix("derived-"))
        #expect(id.count == "derived-".count + 32)
        #expect(id.dropFirst("derived-".count).allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }

    @Test func derivedIdsDifferForDifferentContent() async throws {
        let harness = try await IngestHarness()
        let lines = [
            #"{"type":"track","event":"E","userId":"u1"}"#,
            #"{"type":"track","event":"E","userId":"u2"}"#,
            #"{"type":"track","event":"F","userId":"u1"}"#,
            #"{"type":"track","event":"E","userId":"u1","properties":{}}"#,
            #"{"type":"track","event":"E","userId":"u1","properties":{"n":1}}"#,
            #"{"type":"track","event":"E","userId":"u1","properties":{"n":"1"}}"#,
            #"{"type":"track","event":"E","userId":"u1","properties":{"n":true}}"#,
            #"{"type":"track","event":"E","userId":"u1","timestamp":"2026-11-01T00:00:00Z"}"#,
            #"{"type":"track","event":"E","userId":"u1","timestamp":"2026-11-01T00:00:01Z"}"#,
        ]
        let summary = try await harness.ingest(lines: lines)
        #expect(summary.accepted == lines.count)
        #expect(summary.duplicates == 0)
        await #expect(Set(try harness.messageIds()).count == lines.count)
    }

    /// The derived id is a stored key: it must not change between releases, or re-ingesting an old
    /// file would store its messages again. It is the SHA-256 of the canonical JSON, cut to 32 hex digits.
    @Test func derivedIdIsStable() async throws {
        let harness = try await IngestHarness()
        let line = #"{"type":"track","userId":"u1","event":"E"}"#
        _ = try await harness.ingest(line + "\n")
        let canonical = #"{"event":"E","type":"track","userId":"u1"}"#
        let expected = Hex.string(prefix: "derived-", SHA256.hash(data: Array(canonical.utf8)), digits: 32)
        await #expect(try harness.messageIds() == [expected])
        #expect(expected == "derived-29ad1918d323f651a14ab2fedbe2a458")
    }

    /// A given messageId is used as it is; only a missing one is derived.
    @Test func givenMessageIdsAreKept() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(lines: [
            #"{"type":"track","event":"E","userId":"u1","messageId":"ajs-next-1763812800000-6f0c"}"#,
            #"{"type":"track","event":"E","userId":"u1","messageId":""}"#,
        ])
        let ids = try await harness.messageIds()
        #expect(ids.count == 2)
        #expect(ids.contains("ajs-next-1763812800000-6f0c"))
        // An empty messageId is no key at all: the message gets a derived one.
        #expect(ids.contains { $0.hasPrefix("derived-") })
    }
}

@Suite struct BatchEnvelopeTests {
    @Test func envelopeContextAndSentAtApplyOnlyToMessagesWithoutTheirOwn() async throws {
        let harness = try await IngestHarness()
        let envelope = #"""
            {"batch":[{"type":"track","event":"E","userId":"u1","messageId":"bare"},{"type":"track","event":"E","userId":"u1","messageId":"own","context":{"ip":"10.0.0.1"},"sentAt":"2026-11-05T00:00:00Z"},{"type":"track","event":"E","userId":"u1","messageId":"nulls","context":null,"sentAt":null}],"context":{"library":{"name":"analytics-node","version":"2.1.2"}},"sentAt":"2026-11-04T00:00:00.000Z"}
            """#
        let summary = try await harness.ingest(envelope + "\n")
        #expect(summary.accepted == 3)
        #expect(summary.lines == 1)
        let library: JSONValue = .object([
            "library": .object(["name": .string("analytics-node"), "version": .string("2.1.2")])
        ])
        for id in ["bare", "nulls"] {
            let message = try await #require(try harness.message(id))
            #expect(message["context"] == library)
            #expect(message["sentAt"] == .string("2026-11-04T00:00:00.000Z"))
            #expect(message["batch"] == nil)
            #expect(message["event"] == .string("E"))
        }
        let own = try await #require(try harness.message("own"))
        #expect(own["context"] == .object(["ip": .string("10.0.0.1")]))
        #expect(own["sentAt"] == .string("2026-11-05T00:00:00Z"))
        await #expect(try harness.eventTime("own") == millis("2026-11-05T00:00:00Z"))
        await #expect(try harness.eventTime("bare") == millis("2026-11-04T00:00:00Z"))
        // The stored JSON is one object with each key once (SQLite's JSON functions read it).
        await #expect(try harness.scalar("SELECT count(*) FROM events WHERE json_valid(message)") == .integer(3))
        await #expect(
            try harness.scalar("SELECT count(*) FROM events e, json_each(e.message) j WHERE j.key = 'context'")
                == .integer(3))
    }

    @Test func rejectedBatchMessagesCarryTheEnvelopeLineAndTheirIndex() async throws {
        let harness = try await IngestHarness()
        let text = [
            #"{"type":"track","event":"E","userId":"u0","messageId":"m0"}"#,
            "",
            #"{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"m1"},{"type":"track","userId":"u1"},"oops",{"type":"identify","userId":"u2","messageId":"m2"},{"type":"alias","userId":"u3"}],"sentAt":"2026-11-04T00:00:00Z"}"#,
        ].map { $0 + "\n" }.joined()
        let summary = try await harness.ingest(text)
        #expect(summary.accepted == 3)
        #expect(summary.rejected == 3)
        #expect(summary.lines == 2)
        let name = summary.errors.first?.file ?? ""
        #expect(
            summary.errors == [
                IngestError(file: name, line: 3, index: 1, reason: "a track needs a non-empty string 'event'"),
                IngestError(file: name, line: 3, index: 2, reason: "not a JSON object (got a string)"),
                IngestError(
                    file: name, line: 3, index: 4, reason: "an alias needs a non-empty string 'userId' and 'previousId'"
                ),
            ])
        #expect(summary.errors.first?.description == "\(name):3 [batch 1]: a track needs a non-empty string 'event'")
        let expectedErrors = JSONValue.array([
                    .object([
                        "file": .string(name), "line": .int(3), "index": .int(1),
                        "reason": .string("a track needs a non-empty string 'event'"),
                    ]),
                    .object([
                        "file": .string(name), "line": .int(3), "index": .int(2),
                        "reason": .string("not a JSON object (got a string)"),
                    ]),
                    .object([
                        "file": .string(name), "line": .int(3), "index": .int(4),
                        "reason": .string("an alias needs a non-empty string 'userId' and 'previousId'"),
                    ]),
                ])
        #expect(try reportJSON(summary)["errors"]?.canonicalBytes == expectedErrors.canonicalBytes)
    }

    @Test(arguments: [
        (#"{"batch":{"type":"track"}}"#, "'batch' must be an array of messages (got an object)"),
        (#"{"batch":"[]"}"#, "'batch' must be an array of messages (got a string)"),
        (#"{"batch":null}"#, "'batch' must be an array of messages (got null)"),
        (
            #"{"batch":[{"type":"track","event":"E","userId":"u1"}],"sentAt":"now"}"#,
            "the envelope's 'sentAt' is not an ISO-8601 time with a zone"
        ),
        (
            #"{"batch":[{"type":"track","event":"E","userId":"u1"}],"sentAt":1763812800}"#,
            "the envelope's 'sentAt' is not an ISO-8601 time with a zone"
        ),
    ])
    func badEnvelopesAreRejectedWhole(line: String, reason: String) async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(line + "\n")
        #expect(summary.errors.map(\.reason) == [reason])
        #expect(summary.errors.map(\.index) == [nil])
        #expect(summary.accepted == 0)
        await #expect(try harness.store.eventCount() == 0)
    }

    @Test func emptyBatchStoresNothingAndRejectsNothing() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(#"{"batch":[],"sentAt":"2026-11-04T00:00:00Z"}"# + "\n")
        #expect((summary.accepted, summary.rejected, summary.lines) == (0, 0, 1))
    }

    /// A write key is a credential: it is never stored, logged or written to the rejects file,
    /// whether it sits on the envelope or on a message, stored or rejected.
    @Test func writeKeysAreNeverStoredNorWrittenToRejects() async throws {
        let harness = try await IngestHarness()
        let secret = "wk_SECRET_7Hq2"
        let rejects = harness.directory.file("rejects.ndjson")
        let text = [
            // Stored: on the envelope, on messages (also spelled with an escape), and a null one.
            #"{"batch":[{"type":"track","event":"E","userId":"u1","messageId":"m1","writeKey":"wk_SECRET_7Hq2"},{"type":"identify","userId":"u1","messageId":"m2"}],"writeKey":"wk_SECRET_7Hq2","sentAt":"2026-11-04T00:00:00Z"}"#,
            #"{"type":"page","userId":"u1","messageId":"m3","write\u004bey":"wk_SECRET_7Hq2","context":{"library":{"name":"analytics.js"}}}"#,
            #"{"type":"page","userId":"u1","messageId":"m4","writeKey":null}"#,
            // Rejected: a message, a batch message, a whole envelope, a broken line and a non-object.
            #"{"type":"track","userId":"u1","writeKey":"wk_SECRET_7Hq2"}"#,
            #"{"batch":[{"type":"track","userId":"u1","writeKey":"wk_SECRET_7Hq2"}],"writeKey":"wk_SECRET_7Hq2"}"#,
            #"{"batch":[{"type":"track","event":"E","userId":"u1","writeKey":"wk_SECRET_7Hq2"}],"writeKey":"wk_SECRET_7Hq2","sentAt":"soon"}"#,
            #"{"batch":"none","writeKey":"wk_SECRET_7Hq2"}"#,
            #"{"writeKey":"wk_SECRET_7Hq2","batch":[{"type":"track""#,
            #"[{"type":"track","event":"E","userId":"u1","writeKey":"wk_SECRET_7Hq2"}]"#,
        ].map { $0 + "\n" }.joined()
        let summary = try await harness.ingest(text, rejects: rejects)
        #expect(summary.accepted == 4)
        #expect(summary.rejected == 6)
        for id in ["m1", "m2", "m3", "m4"] {
            let message = try await #require(try harness.message(id))
            #expect(message["writeKey"] == nil)
        }
        await #expect(
            try harness.message("m3")?["context"] == .object(["library": .object(["name": .string("analytics.js")])]))
        try await harness.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        #expect(!(try harness.databaseBytes()).containsBytes(of: secret))
        let rejected = try #require(FileManager.default.contents(atPath: rejects))
        #expect(Array(rejected).count > 0)
        #expect(!Array(rejected).containsBytes(of: secret))
        #expect(!summary.errors.contains { $0.reason.contains(secret) })
    }
}

@Suite struct StrictIngestTests {
    static let good = [
        #"{"type":"identify","userId":"u1","anonymousId":"a1","messageId":"g1","traits":{"plan":"pro"}}"#,
        #"{"type":"track","event":"E","userId":"u1","messageId":"g2"}"#,
        #"{"type":"page","anonymousId":"a9","messageId":"g3"}"#,
        #"{"type":"alias","userId":"u2","previousId":"a2","messageId":"g4"}"#,
    ]

    /// With --strict one bad line stores nothing — not the lines before it, not the lines after it,
    /// and not the users and links they carry — yet every bad line is still reported.
    @Test(arguments: [1, 3, 100_000])
    func strictStoresNothingWhenAnyLineIsBad(transactionSize: Int) async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(#"{"type":"track","event":"Before","userId":"u0","messageId":"before"}"# + "\n")
        await #expect(try harness.store.eventCount() == 1)

        var lines = (0..<10).map { #"{"type":"track","event":"E","userId":"u\#($0)","messageId":"s\#($0)"}"# }
        lines += StrictIngestTests.good
        lines.append("{bad")
        lines += (10..<14).map { #"{"type":"track","event":"E","userId":"u\#($0)","messageId":"s\#($0)"}"# }
        lines.append(#"{"type":"track","userId":"u1"}"#)
        lines.append(#"{"batch":[{"type":"track","event":"E","userId":"u1"},{"type":"nope","userId":"u1"}]}"#)
        let summary = try await harness.ingest(
            lines.map { $0 + "\n" }.joined(), strict: true, transactionSize: transactionSize)

        #expect(!summary.stored)
        #expect(summary.rejected == 3)
        #expect(summary.errors.map(\.line) == [15, 20, 21])
        #expect(summary.errors.map(\.index) == [nil, nil, 1])
        #expect(summary.accepted == 0)
        #expect(summary.duplicates == 0)
        #expect(summary.anonymous == 0)
        #expect(try reportJSON(summary)["stored"] == .bool(false))
        await #expect(try harness.store.eventCount() == 1)
        await #expect(try harness.messageIds() == ["before"])
        await #expect(try harness.store.users(now: ingestNow) == ["u0"])
        await #expect(try harness.scalar("SELECT count(*) FROM identity_links") == .integer(0))
        // Nothing is left locked: another write begins at once.
        _ = try await harness.ingest(#"{"type":"track","event":"After","userId":"u0","messageId":"after"}"# + "\n")
        await #expect(try harness.store.eventCount() == 2)
    }

    @Test func strictSpansAllFilesOfOneIngest() async throws {
        let harness = try await IngestHarness()
        let first = try harness.input(Array((StrictIngestTests.good.joined(separator: "\n") + "\n").utf8))
        let second = try harness.input(Array("[1]\n".utf8))
        var options = IngestOptions(strict: true, now: ingestNow)
        options.transactionSize = 2
        let summary = try await harness.ingest(paths: [first, second], options: options)
        #expect(!summary.stored)
        #expect(summary.errors == [IngestError(file: second, line: 1, reason: "not a JSON object (got an array)")])
        await #expect(try harness.store.eventCount() == 0)
    }

    @Test func strictWithGoodInputStoresEverything() async throws {
        let harness = try await IngestHarness()
        var lines = StrictIngestTests.good
        lines.append(StrictIngestTests.good[0])  // a duplicate is not a bad line
        let summary = try await harness.ingest(lines.map { $0 + "\n" }.joined(), strict: true, transactionSize: 2)
        #expect(summary.stored)
        #expect((summary.accepted, summary.duplicates, summary.rejected, summary.anonymous) == (4, 1, 0, 1))
        await #expect(try harness.store.eventCount() == 4)
        await #expect(try harness.store.linkedUser(anonymousId: "a2", now: ingestNow) == "u2")
    }

    /// Without --strict, bad lines are skipped and the rest is stored, across many small transactions.
    @Test func withoutStrictTheGoodLinesAreStored() async throws {
        let harness = try await IngestHarness()
        var lines = (0..<10).map { #"{"type":"track","event":"E","userId":"u\#($0)","messageId":"s\#($0)"}"# }
        lines.insert("{bad", at: 4)
        lines.insert(#"{"type":"track","userId":"u1"}"#, at: 8)
        let summary = try await harness.ingest(lines.map { $0 + "\n" }.joined(), transactionSize: 3)
        #expect(summary.stored)
        #expect((summary.accepted, summary.rejected) == (10, 2))
        #expect(summary.errors.map(\.line) == [5, 9])
        await #expect(try harness.store.eventCount() == 10)
        await #expect(try harness.store.users(now: ingestNow).count == 10)
    }
}

@Suite struct RejectsFileTests {
    private func records(_ path: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.isEmpty || text.hasSuffix("\n"))
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    @Test func oneRecordPerRejectionWithFileLineIndexReasonAndInput() async throws {
        let harness = try await IngestHarness()
        let rejects = harness.directory.file("rejects.ndjson")
        let text = [
            #"{"type":"track","event":"E","userId":"u1"}"#,
            #"{"type":"track","userId":"u1","properties":{"b":true}}"#,
            #"{"type":"track""#,
            #"{"batch":[{"type":"page","userId":"u1"},{"type":"page"}]}"#,
            "\"just a string\"",
        ].map { $0 + "\n" }.joined()
        let summary = try await harness.ingest(text, rejects: rejects)
        #expect(summary.rejected == 4)
        let file = try #require(summary.errors.first?.file)
        let expected: [JSONValue] = [
            .object([
                "file": .string(file), "line": .int(2), "reason": .string("a track needs a non-empty string 'event'"),
                "input": try JSONValue.parse(#"{"type":"track","userId":"u1","properties":{"b":true}}"#),
            ]),
            .object([
                "file": .string(file), "line": .int(3),
                "reason": .string("not valid JSON: unterminated object at column 16"),
                "input": .string(#"{"type":"track""#),
            ]),
            .object([
                "file": .string(file), "line": .int(4), "index": .int(1),
                "reason": .string("no identity: a non-empty string 'userId' or 'anonymousId' is required"),
                "input": try JSONValue.parse(#"{"type":"page"}"#),
            ]),
            .object([
                "file": .string(file), "line": .int(5), "reason": .string("not a JSON object (got a string)"),
                "input": .string("just a string"),
            ]),
        ]
        let written = try records(rejects)
        #expect(written.count == expected.count)
        for (record, wanted) in zip(written, expected) { #expect(record.jsonString == wanted.jsonString) }
    }

    @Test func theRejectsFileIsEmptyWhenNothingIsRejected() async throws {
        let harness = try await IngestHarness()
        let rejects = harness.directory.file("rejects.ndjson")
        try "stale\n".write(toFile: rejects, atomically: true, encoding: .utf8)
        _ = try await harness.ingest(#"{"type":"track","event":"E","userId":"u1"}"# + "\n", rejects: rejects)
        #expect(try records(rejects) == [])
    }

    @Test func strictStillWritesEveryRejection() async throws {
        let harness = try await IngestHarness()
        let rejects = harness.directory.file("rejects.ndjson")
        let summary = try await harness.ingest(
            "{bad\n" + #"{"type":"track","event":"E","userId":"u1"}"# + "\n[]\n", strict: true, rejects: rejects)
        #expect(!summary.stored)
        #expect(try records(rejects).map { $0["line"] } == [.int(1), .int(3)])
    }
}

@Suite struct IngestInputTests {
    static let track = #"{"type":"track","event":"E","userId":"u1","messageId":"m1"}"#
    static let page = #"{"type":"page","anonymousId":"a1","messageId":"m2"}"#

    @Test func crlfLineEndsAreNotPartOfTheMessage() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(IngestInputTests.track + "\r\n" + "{bad\r\n" + IngestInputTests.page + "\r\n")
        #expect((summary.accepted, summary.rejected, summary.lines) == (2, 1, 3))
        #expect(summary.errors.map(\.line) == [2])
        await #expect(
            try harness.scalar("SELECT message FROM events WHERE message_id = 'm1'") == .text(IngestInputTests.track))
        await #expect(try harness.scalar("SELECT count(*) FROM events WHERE instr(message, char(13)) > 0") == .integer(0))
    }

    @Test func blankLinesAreSkippedButCounted() async throws {
        let harness = try await IngestHarness()
        let text = "\n" + IngestInputTests.track + "\n   \n\t\r\n\n" + "{bad\n" + "\n" + IngestInputTests.page + "\n\n"
        let summary = try await harness.ingest(text)
        #expect((summary.accepted, summary.rejected) == (2, 1))
        #expect(summary.lines == 3)
        #expect(summary.errors.map(\.line) == [6])
    }

    @Test func aByteOrderMarkAtTheStartIsIgnored() async throws {
        let harness = try await IngestHarness()
        let bytes: [UInt8] =
            [0xEF, 0xBB, 0xBF] + Array((IngestInputTests.track + "\n" + IngestInputTests.page + "\n").utf8)
        let summary = try await harness.ingest(bytes: bytes)
        #expect((summary.accepted, summary.rejected) == (2, 0))
        await #expect(
            try harness.scalar("SELECT message FROM events WHERE message_id = 'm1'") == .text(IngestInputTests.track))
    }

    /// Only at the start: a byte order mark inside the input is not whitespace.
    @Test func aByteOrderMarkLaterIsAnError() async throws {
        let harness = try await IngestHarness()
        let bytes: [UInt8] =
            Array((IngestInputTests.track + "\n").utf8) + [0xEF, 0xBB, 0xBF] + Array(IngestInputTests.page.utf8)
        let summary = try await harness.ingest(bytes: bytes)
        #expect((summary.accepted, summary.rejected) == (1, 1))
        #expect(summary.errors.map(\.line) == [2])
    }

    @Test func aFinalLineWithoutNewlineIsRead() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(IngestInputTests.track + "\n" + IngestInputTests.page)
        #expect((summary.accepted, summary.rejected, summary.lines) == (2, 0, 2))
        let bad = try await harness.ingest(IngestInputTests.track + "\n{bad")
        #expect(bad.errors.map(\.line) == [2])
    }

    @Test func emptyInputIsNothing() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest("")
        #expect(
            (summary.accepted, summary.duplicates, summary.rejected, summary.anonymous, summary.lines) == (
                0, 0, 0, 0, 0
            ))
        #expect(summary.errors.isEmpty)
        #expect(
            try reportJSON(summary).canonicalBytes
                == JSONValue.parse(#"{"accepted":0,"duplicates":0,"rejected":0,"anonymous":0,"errors":[],"stored":true,"lines":0}"#)
                .canonicalBytes)
    }

    /// A line longer than the limit is rejected without being buffered whole; the next line is read.
    @Test func aLineTooLongIsRejectedAndReadingGoesOn() async throws {
        let harness = try await IngestHarness()
        let path = harness.directory.file("long.ndjson")
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Array((IngestInputTests.track + "\n").utf8))
        try handle.write(contentsOf: Array(#"{"type":"track","event":"E","userId":"u1","properties":{"pad":""#.utf8))
        let block = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<(LineReader.maximumLineLength >> 20) { try handle.write(contentsOf: block) }
        try handle.write(contentsOf: Array(#""}}"#.utf8) + [0x0A])
        try handle.write(contentsOf: Array((IngestInputTests.page + "\n").utf8))
        try handle.close()
        let summary = try await harness.ingest(paths: [path], options: IngestOptions(now: ingestNow))
        #expect((summary.accepted, summary.rejected, summary.lines) == (2, 1, 3))
        #expect(summary.errors == [IngestError(file: path, line: 2, reason: "line longer than 64 MiB")])
    }

    @Test func countsLinesAndAnonymousMessages() async throws {
        let harness = try await IngestHarness()
        let summary = try await harness.ingest(lines: [
            #"{"type":"page","anonymousId":"a1"}"#,
            #"{"type":"page","anonymousId":"a1","userId":null}"#,
            #"{"type":"page","anonymousId":"a1","userId":"u1"}"#,
            #"{"type":"page","anonymousId":"a1"}"#,  // a duplicate is not counted again
            #"{"batch":[{"type":"track","event":"E","anonymousId":"a2"},{"type":"track","event":"E","anonymousId":"a2","userId":"u2"}]}"#,
            "{bad",
        ])
        #expect(summary.lines == 6)
        #expect((summary.accepted, summary.duplicates, summary.rejected) == (5, 1, 1))
        #expect(summary.anonymous == 3)
        await #expect(try harness.scalar("SELECT count(*) FROM events WHERE user_id IS NULL") == .integer(3))
    }

    @Test func aMissingFileIsAnErrorNamingIt() async throws {
        let harness = try await IngestHarness()
        let missing = harness.directory.file("missing.ndjson")
        let lines = await errorLines { _ = try await harness.ingest(paths: [missing], options: IngestOptions(now: ingestNow)) }
        #expect(lines.count == 1)
        #expect(lines.first?.contains(missing) == true)
    }
}

/// The NDJSON fixtures under `fixtures/ingest/`, each with the ingest JSON it must give.
@Suite struct IngestFixtureTests {
    static let folder = repositoryRoot + "/fixtures/ingest"

    static var fixtures: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix(".ndjson") }.sorted()
    }

    /// The summary JSON with each error's file reduced to its name, so it does not depend on where
    /// the repository is.
    static func pathIndependent(_ json: JSONValue) -> JSONValue {
        guard case .object(var members) = json else { return json }
        for index in members.indices where members[index].key == "errors" {
            guard case .array(let errors) = members[index].value else { continue }
            members[index].value = .array(
                errors.map { error in
                    guard case .object(var fields) = error else { return error }
                    for field in fields.indices where fields[field].key == "file" {
                        fields[field].value = .string(
                            URL(fileURLWithPath: fields[field].value.stringValue ?? "").lastPathComponent)
                    }
                    return .object(fields)
                })
        }
        return .object(members)
    }

    @Test func thereAreFixtures() {
        #expect(IngestFixtureTests.fixtures.count >= 4)
    }

    @Test(arguments: fixtures)
    func fixtureGivesItsExpectedSummary(name: String) async throws {
        let harness = try await IngestHarness()
        let path = IngestFixtureTests.folder + "/" + name
        let expectedPath = path.replacingOccurrences(of: ".ndjson", with: ".expected.json")
        let expected = try JSONValue.parse(try String(contentsOfFile: expectedPath, encoding: .utf8))
        let summary = try await harness.ingest(paths: [path], options: IngestOptions(now: ingestNow))
        let actual = IngestFixtureTests.pathIndependent(try reportJSON(summary))
        #expect(
            String(decoding: actual.canonicalBytes, as: UTF8.self)
                == String(decoding: expected.canonicalBytes, as: UTF8.self))
        // Every stored message is one valid JSON object with no write key.
        await #expect(try harness.scalar("SELECT count(*) FROM events WHERE NOT json_valid(message)") == .integer(0))
        await #expect(
            try harness.scalar("SELECT count(*) FROM events WHERE json_type(message, '$.writeKey') IS NOT NULL")
                == .integer(0))
        // A second ingest stores nothing new.
        let again = try await harness.ingest(paths: [path], options: IngestOptions(now: ingestNow))
        #expect(again.accepted == 0)
        #expect(again.duplicates == summary.accepted + summary.duplicates)
        #expect(again.rejected == summary.rejected)
    }

    /// `fixtures/demo/events.ndjson` gives the counts `fixtures/demo/EVENTS.md` promises.
    @Test func demoEventsGiveTheDocumentedCounts() async throws {
        let harness = try await IngestHarness()
        let path = repositoryRoot + "/fixtures/demo/events.ndjson"
        let options = IngestOptions(now: ingestNow)
        let summary = try await harness.ingest(paths: [path], options: options)
        #expect((summary.accepted, summary.duplicates, summary.rejected, summary.anonymous) == (62, 1, 5, 7))
        #expect(summary.lines == 66)
        #expect(summary.errors.map(\.line) == [7, 17, 28, 44, 56])
        #expect(summary.errors.map(\.index) == [nil, nil, nil, nil, nil])
        #expect(summary.errors[1].reason == "not a JSON object (got an array)")
        #expect(summary.errors[2].reason == "a track needs a non-empty string 'event'")
        #expect(summary.errors[3].reason == "no identity: a non-empty string 'userId' or 'anonymousId' is required")
        #expect(summary.errors[4].reason.hasPrefix("'timestamp' is not an ISO-8601 time"))
        await #expect(try harness.store.eventCount() == 62)
        await #expect(try harness.scalar("SELECT count(*) FROM events WHERE message_id LIKE 'derived-%'") == .integer(3))
        await #expect(try harness.store.unlinkedAnonymousEventCount(now: ingestNow) == 3)
        await #expect(try harness.store.users(now: ingestNow).count == 12)
        await #expect(
            try harness.store.linkedUser(anonymousId: "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e09", now: ingestNow)
                == "u_ivan")
        // The batch envelope on line 46: the order without context takes the envelope's.
        let order = try await #require(try harness.message("d3m0-kai-0003"))
        #expect(order["context"]?["ip"] == .string("203.0.113.21"))
        #expect(order["sentAt"] == .string("2026-11-15T10:10:05.000Z"))

        let again = try await harness.ingest(paths: [path], options: options)
        #expect((again.accepted, again.duplicates, again.rejected, again.anonymous) == (0, 63, 5, 0))
    }
}
