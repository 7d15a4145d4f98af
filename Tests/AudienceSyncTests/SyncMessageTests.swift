import Crypto
import Testing

@testable import AudienceSync

/// The message text a sync writes is built from precomputed parts; it must be byte for byte the
/// JSON of the message tree (SPEC §6.1), whatever the user id, value, key or destination.
@Suite struct SyncMessageTests {
    static let userIds = ["u_42", "", "quote\"back\\slash", "tab\there\nnew", "\u{1}\u{1F}", "é e\u{301} 😀", "</script>"]
    static let values: [JSONValue] = [
        .bool(true), .bool(false), .null, .number("78.99"), .number("-1e-7"), .string("plan \"pro\"\n"),
        .array([.string("a"), .number("1")]), .object([JSONValue.Member("k", .string("v"))]),
    ]

    @Test(arguments: [Definition.Kind.audience, .computedTrait])
    func theTextIsTheJSONOfTheMessage(kind: Definition.Kind) {
        for sendAs in [DestinationConfiguration.SendAs.identify, .track] {
            for spaceID in [nil, "spa_\"x\""] as [String?] {
                for key in ["nps_detractors", "odd \"key\"\\"] {
                    let template = SyncMessage.Template(
                        key: key, kind: kind, sendAs: sendAs, spaceID: spaceID, now: 1_795_348_800_123)
                    for userId in Self.userIds {
                        for value in Self.values {
                            let messageId = "as-7-" + String(repeating: "ab", count: 20)
                            let tree = template.body(userId: userId, value: value, messageId: messageId)
                            let text = template.text(userId: userId, value: value, messageId: messageId)
                            #expect(text == tree.jsonString, "\(kind) \(sendAs) \(key) \(userId) \(value)")
                            #expect(Array(text.utf8) == Array(tree.jsonString.utf8))
                            #expect(
                                template.textLength(userId: userId, value: value, messageIdLength: messageId.utf8.count)
                                    == text.utf8.count)
                            let parsed = try? JSONValue.parse(text)
                            #expect(parsed == tree)
                        }
                    }
                }
            }
        }
    }

    @Test func theMessageIdLengthIsTheIdsLength() {
        for runId: Int64 in [1, 9, 10, 12_345, Int64.max] {
            let id = SyncMessage.messageID(key: "k", destination: "d", userId: "u", value: "true", runId: runId)
            #expect(SyncMessage.messageIDLength(runId: runId) == id.utf8.count)
        }
    }

    @Test func aTrackMessageSaysEnteredOnlyForTrue() {
        let template = SyncMessage.Template(key: "k", kind: .audience, sendAs: .track, spaceID: nil, now: 0)
        #expect(template.text(userId: "u", value: .bool(true), messageId: "m").contains(#""event":"Audience Entered""#))
        #expect(template.text(userId: "u", value: .bool(false), messageId: "m").contains(#""event":"Audience Exited""#))
    }

    /// The per-run id maker (behind `messageID` too) hashes the shared text once; its ids must be
    /// exactly the documented definition, computed here from the whole text, for ids and values of
    /// any length (across SHA-256's 64-byte blocks) and any bytes.
    @Test func theRunsIdMakerGivesExactlyTheMessageIds() {
        let longId = String(repeating: "ü", count: 70)
        for (key, destination, runId) in [("k", "d", Int64(1)), ("order_completed_last_30days", "segment_prod", 123_456_789)] {
            let maker = SyncMessage.MessageIDs(key: key, destination: destination, runId: runId)
            for userId in ["u", "", "user-0000001", longId, "a\u{0}b", "é", "e\u{301}", "😀"] {
                for value in ["true", "false", "null", "78.99", #""a \"quoted\" text""#, String(repeating: "9", count: 130)] {
                    let text = ["audience-sync/1", key, destination, userId, value, String(runId)]
                        .joined(separator: "\u{0}")
                    let expected = "as-\(runId)-" + String(Hex.string(SHA256.hash(data: Array(text.utf8))).prefix(40))
                    #expect(maker.id(userId: userId, value: value) == expected)
                    #expect(
                        SyncMessage.messageID(key: key, destination: destination, userId: userId, value: value, runId: runId)
                            == expected)
                }
            }
        }
        // And ids differ with any field.
        let maker = SyncMessage.MessageIDs(key: "k", destination: "d", runId: 1)
        #expect(maker.id(userId: "u", value: "true") != maker.id(userId: "u", value: "false"))
        #expect(maker.id(userId: "u", value: "true") != SyncMessage.MessageIDs(key: "k", destination: "d", runId: 2).id(userId: "u", value: "true"))
    }

    @Test func writingIntoABufferGivesTheText() {
        let template = SyncMessage.Template(key: "k", kind: .computedTrait, sendAs: .identify, spaceID: "spa", now: 0)
        var buffer: [UInt8] = Array(repeating: 65, count: 4_000)
        for (userId, value) in [("a-long-user-id-\(String(repeating: "x", count: 300))", JSONValue.int(3)), ("u", .string("é\"\n"))] {
            template.write(userId: userId, value: value, messageId: "m-1", into: &buffer)
            #expect(String(decoding: buffer, as: UTF8.self) == template.body(userId: userId, value: value, messageId: "m-1").jsonString)
        }
    }
}

extension SyncMessage.Template {
    /// The message as a JSON tree, built field by field from SPEC §6.1: the oracle the text writer
    /// is held to.
    func body(userId: String, value: JSONValue, messageId: String) -> JSONValue {
        if kind == .audience && sendAs == .track {
            let entered = value == .bool(true)
            return .object([
                "type": .string("track"),
                "userId": .string(userId),
                "event": .string(entered ? "Audience Entered" : "Audience Exited"),
                "properties": .object([
                    JSONValue.Member("audience_key", .string(key)), JSONValue.Member(key, value),
                ]),
                "context": context,
                "messageId": .string(messageId),
                "timestamp": timestamp,
            ])
        }
        return .object([
            "type": .string("identify"),
            "userId": .string(userId),
            "traits": .object([JSONValue.Member(key, value)]),
            "context": context,
            "messageId": .string(messageId),
            "timestamp": timestamp,
        ])
    }
}
