import AudienceSync
import Foundation
import SharedTestSupport
import Testing

/// What `audience-sync serve` does with the messages it is given (SPEC §11.1, §11.2): sizes,
/// partial batches, duplicates, derived messageIds, and Segment's clock-skew correction.
@Suite struct ServeMessagesTests {
    @Test func requestAndMessageSizeLimits() async throws {
        let project = try ServeProject(limits: ["max_request_bytes": 100_000])
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            // 150 KB of JSON, plain: 413.
            let filler = String(repeating: "a", count: 1_000)
            let large = jsonText(["batch": (0..<150).map { track("big-\($0)", ["properties": ["filler": filler]]) }])
            #expect(large.utf8.count > 150_000)
            let plain = try await collector.post("/v1/batch", large)
            #expect(plain.status == 413, "\(plain)")
            // The same as gzip: a few KB on the wire that inflate past the limit: 413.
            let compressed = gzip(large)
            #expect(compressed.count < 20_000)
            let inflated = try await collector.post("/v1/batch", compressed, headers: [("Content-Encoding", "gzip")])
            #expect(inflated.status == 413, "\(inflated)")

            // A 40 KB message is over max_message_bytes (32 KB by default): only it is refused.
            let huge = track("huge", ["properties": ["filler": String(repeating: "b", count: 40_000)]])
            let mixed = try await collector.postBatch([track("small-0"), huge, track("small-2")])
            #expect(mixed.status == 200 && mixed.accepted == 2, "\(mixed)")
            #expect(mixed.rejected.map(\.index) == [1], "\(mixed)")
            #expect(mixed.rejected.first?.reason.contains("32768") == true, "\(mixed)")
            // Alone on a single route, it is the whole request's rejection.
            let alone = try await collector.post("/v1/track", jsonText(huge))
            #expect(alone.status == 400 && alone.rejected.map(\.index) == [0], "\(alone)")
        }
        try await server.stop()
        #expect(Set(try project.storedEvents().keys) == ["small-0", "small-2"])
    }

    @Test func partialBatchesAndUnusableBodies() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let partial = try await collector.post(
                "/v1/batch",
                jsonText([
                    "batch": [
                        track("p-0"), ["type": "track", "userId": "u_1", "messageId": "p-1"], track("p-2"), 5,
                        track("p-4", ["timestamp": "yesterday"]), ["type": "alias", "userId": "u_1", "messageId": "p-5"],
                        ["type": "identify", "anonymousId": "a_1", "messageId": "p-6"],
                    ]
                ]))
            #expect(partial.status == 200 && partial.json["success"] as? Bool == true, "\(partial)")
            #expect(partial.accepted == 3 && partial.duplicates == 0, "\(partial)")
            #expect(partial.rejected.map(\.index) == [1, 3, 4, 5], "\(partial)")
            #expect(partial.rejected.allSatisfy { !$0.reason.isEmpty })

            let allInvalid = try await collector.postBatch([
                ["type": "track", "userId": "u_1", "messageId": "bad-0"], ["type": "shout", "userId": "u_1"],
            ])
            #expect(allInvalid.status == 400 && allInvalid.json["success"] as? Bool == false, "\(allInvalid)")
            #expect(allInvalid.rejected.map(\.index) == [0, 1], "\(allInvalid)")

            for (body, path) in [
                ("{\"batch\": []}", "/v1/batch"), ("{\"batch\": {}}", "/v1/batch"), ("{}", "/v1/b"),
                ("[{\"type\": \"track\"}]", "/v1/batch"), ("[]", "/v1/track"), ("{\"batch\": [", "/v1/batch"),
                ("\"text\"", "/v1/i"),
            ] {
                let answer = try await collector.post(path, body)
                #expect(answer.status == 400 && answer.error?.isEmpty == false, "\(path) \(body): \(answer)")
            }
        }
        try await server.stop()
        #expect(Set(try project.storedEvents().keys) == ["p-0", "p-2", "p-6"])
    }

    @Test func duplicatesAreCountedAndStoredOnce() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let first = try await collector.postBatch([track("d-1"), track("d-2")])
            #expect(first.accepted == 2 && first.duplicates == 0, "\(first)")
            let again = try await collector.postBatch([track("d-1"), track("d-3")])
            #expect(again.status == 200 && again.accepted == 1 && again.duplicates == 1, "\(again)")
            let twiceInOne = try await collector.postBatch([track("d-4"), track("d-4")])
            #expect(twiceInOne.accepted == 1 && twiceInOne.duplicates == 1, "\(twiceInOne)")
            let onlyDuplicates = try await collector.post("/v1/t", jsonText(track("d-2")))
            #expect(onlyDuplicates.status == 200 && onlyDuplicates.accepted == 0, "\(onlyDuplicates)")
            #expect(onlyDuplicates.duplicates == 1, "\(onlyDuplicates)")

            // Without a messageId, the id derived from the content does not depend on the server's
            // receivedAt (nor on how the key was given): a retry is a duplicate.
            let anonymous = track(nil, user: "u_retry", ["properties": ["n": 1], "originalTimestamp": "2026-01-05T10:00:00Z"])
            let envelope = jsonText(["batch": [anonymous], "sentAt": "2026-01-05T10:00:01Z"])
            let sent = try await collector.post("/v1/batch", envelope)
            #expect(sent.accepted == 1, "\(sent)")
            let retried = try await collector.post("/v1/batch", envelope)
            #expect(retried.status == 200 && retried.accepted == 0 && retried.duplicates == 1, "\(retried)")
            let single = track(nil, user: "u_single", ["properties": ["n": 2]])
            let once = try await collector.post("/v1/track", jsonText(single))
            #expect(once.accepted == 1, "\(once)")
            let withKey = try await collector.post(
                "/v1/t", jsonText(single.merging(["writeKey": ServeProject.webKey]) { $1 }), auth: .none,
                contentType: "text/plain")
            #expect(withKey.status == 200 && withKey.duplicates == 1, "\(withKey)")
        }
        try await server.stop()
        let stored = try project.storedEvents()
        #expect(Set(stored.keys.filter { !$0.hasPrefix("derived-") }) == ["d-1", "d-2", "d-3", "d-4"])
        #expect(stored.values.filter { $0.messageId.hasPrefix("derived-") }.compactMap(\.userId).sorted() == ["u_retry", "u_single"])
    }

    /// SPEC §11.1: the server sets `receivedAt`; without `timestamp`, a message with
    /// `originalTimestamp` and `sentAt` (its own or its envelope's) happened at
    /// `receivedAt − (sentAt − originalTimestamp)`; otherwise §3.1's order holds.
    @Test func clockSkewCorrectionAndTheServersReceivedAt() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let single = try await collector.post(
                "/v1/track",
                jsonText(
                    track(
                        "skew-own",
                        [
                            "originalTimestamp": "2024-01-01T01:00:00.000+01:00", "sentAt": "2024-01-01T00:05:02.250Z",
                            "receivedAt": "2000-01-01T00:00:00Z",
                        ])))
            #expect(single.accepted == 1, "\(single)")
            let batch = try await collector.post(
                "/v1/batch",
                jsonText([
                    "sentAt": "2024-01-01T00:00:10Z",
                    "batch": [
                        track("skew-envelope", ["originalTimestamp": "2024-01-01T00:00:00Z"]),
                        track(
                            "skew-timestamp",
                            ["timestamp": "2025-03-01T10:00:00.123Z", "originalTimestamp": "2024-01-01T00:00:00Z"]),
                        track("skew-own-wins", ["originalTimestamp": "2024-01-01T00:00:00Z", "sentAt": "2024-01-01T00:00:01Z"]),
                    ],
                ]))
            #expect(batch.accepted == 3, "\(batch)")
            let others = try await collector.postBatch([
                track("only-original", ["originalTimestamp": "2023-06-01T12:00:00Z"]),
                track("only-sent", ["sentAt": "2023-06-01T12:00:00Z"]), track("no-times"),
            ])
            #expect(others.accepted == 3, "\(others)")
        }
        try await server.stop()
        let stored = try project.storedEvents()
        func check(_ id: String, _ expected: (StoredEvent) -> Int64, sourceLocation: SourceLocation = #_sourceLocation) {
            guard let event = stored[id] else {
                Issue.record("\(id) was not stored", sourceLocation: sourceLocation)
                return
            }
            #expect(event.time == expected(event), "\(id): ts \(event.time), receivedAt \(event.receivedAt)", sourceLocation: sourceLocation)
            // The stored message carries the server's receivedAt, the one in the column.
            let written = (event.json["receivedAt"] as? String).flatMap(Timestamp.parse)
            #expect(written == event.receivedAt, "\(id): \(event.message)", sourceLocation: sourceLocation)
        }
        check("skew-own") { $0.receivedAt - 302_250 }
        check("skew-envelope") { $0.receivedAt - 10_000 }
        check("skew-timestamp") { _ in Timestamp.parse("2025-03-01T10:00:00.123Z")! }
        check("skew-own-wins") { $0.receivedAt - 1_000 }
        check("only-original") { _ in Timestamp.parse("2023-06-01T12:00:00Z")! }
        check("only-sent") { $0.receivedAt }
        check("no-times") { $0.receivedAt }
        // The client's receivedAt was replaced, not kept beside the server's.
        #expect(stored["skew-own"].map { !$0.message.contains("2000-01-01") } == true)
    }
}
