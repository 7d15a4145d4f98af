import Testing

@testable import AudienceSync

/// Ids derived by hashing are stored keys and sent messageIds: a re-ingested file must not store
/// its messages again, and a re-sent change must keep its messageId so destinations deduplicate it.
/// These values were computed once and must never change, whatever computes the SHA-256.
@Suite struct PinnedIdTests {
    /// The derived messageIds of the demo events that have none.
    @Test func derivedIngestIdsOfTheDemoEvents() async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(
            paths: [repositoryRoot + "/fixtures/demo/events.ndjson"], options: IngestOptions(now: ingestNow))
        let derived = try await harness.messageIds().filter { $0.hasPrefix("derived-") }
        #expect(
            derived == [
                "derived-195c85403029c968ff90684624c96385", "derived-56e0a33be02b4da388e999a2f5ca0044",
                "derived-e1bc99b515a34f2a74a4cbb3a16817be",
            ])
    }

    /// Derived messageIds of messages with escapes, non-ASCII keys and texts longer than a block.
    @Test(arguments: [
        (#"{"type":"track","userId":"u1","event":"E"}"#, "derived-29ad1918d323f651a14ab2fedbe2a458"),
        (
            #"{"type":"identify","userId":"é\u00e9😀","traits":{"z":1,"a":[true,null,"q\"\n"]}}"#,
            "derived-689e5567b4a6ef8ffbd2e9f11c88b909"
        ),
        (
            #"{"type":"track","userId":"u2","event":"Order Completed","properties":{"text":""#
                + String(repeating: "x", count: 150) + #""}}"#,
            "derived-86f2eeb82c29622ecac2240aaeb39930"
        ),
        (
            #"{"batch":[{"type":"page","anonymousId":"a1","name":"Home"}],"context":{"ip":"1.2.3.4"}}"#,
            "derived-4f03ab1e1912a28959671f08ff4e7d1b"
        ),
    ])
    func derivedIngestIds(line: String, expected: String) async throws {
        let harness = try await IngestHarness()
        _ = try await harness.ingest(line + "\n")
        let ids = try await harness.messageIds()
        #expect(ids == [expected])
    }

    @Test(arguments: [
        ("nps_detractors", Definition.Kind.audience, "aud_de4f281a7b0a17595c2719ec"),
        ("total_spent_90_days", .computedTrait, "trt_9b3274ff8cc76f43b339e648"),
        ("", .audience, "aud_e3b0c44298fc1c149afbf4c8"),
        ("é 😀", .computedTrait, "trt_e02a2dea95a65290636bfef2"),
    ])
    func computationIDs(key: String, kind: Definition.Kind, expected: String) {
        #expect(SyncMessage.computationID(key: key, kind: kind) == expected)
    }

    /// Ids of a sync's changes, through `messageID` and through one pair's id maker (which copies
    /// the hashed shared prefix for every change), with fields shorter and longer than a block.
    @Test(arguments: [
        ("nps_detractors", "segment_prod", "u_42", "true", Int64(1), "as-1-29047d6646624b2285ab4c2d0b297765d692d791"),
        ("nps_detractors", "segment_prod", "u_42", "false", 2, "as-2-a7b0a0a720724fe30a21cdb968cec6496d6bf0e4"),
        (
            "total_spent_90_days", "sprig", "user-0000001", "78.99", 123_456_789,
            "as-123456789-5e637e51d98a09703b1fa4ff354b25813456bc92"
        ),
        ("k", "d", "", "null", 9, "as-9-5440615516ac5380d937ff48098909e2d2058fdb"),
        (
            "k", "d", String(repeating: "ü", count: 70), #""a \"quoted\" text""#, 10,
            "as-10-3962960fb1fd048a61cfd3dbe7530ef84a0b7af0"
        ),
        (
            String(repeating: "key", count: 30), "file", "😀", String(repeating: "9", count: 130), Int64.max,
            "as-9223372036854775807-bf4915079d5df44db335f1c75447f93bc26bec70"
        ),
    ])
    func syncMessageIDs(
        key: String, destination: String, userId: String, value: String, runId: Int64, expected: String
    ) {
        #expect(
            SyncMessage.messageID(key: key, destination: destination, userId: userId, value: value, runId: runId)
                == expected)
        let maker = SyncMessage.MessageIDs(key: key, destination: destination, runId: runId)
        // The maker's state is copied per change: an earlier id must not change a later one.
        _ = maker.id(userId: "someone else", value: "true")
        #expect(maker.id(userId: userId, value: value) == expected)
    }
}
