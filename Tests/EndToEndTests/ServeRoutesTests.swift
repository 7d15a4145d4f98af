import AudienceSync
import Foundation
import SharedTestSupport
import Testing

/// `audience-sync serve` (SPEC §11.1, §11.2) run as a user runs it, on loopback: every route, both
/// forms of authentication, the body's types and encodings, CORS, `/health` and `/metrics`; the
/// store is read afterwards.
@Suite struct ServeRoutesTests {
    static var singleRoutes: [(long: String, short: String, type: String, fields: [String: Any])] {
        [
            ("/v1/track", "/v1/t", "track", ["event": "Clicked"]),
            ("/v1/identify", "/v1/i", "identify", ["traits": ["plan": "pro"]]),
            ("/v1/page", "/v1/p", "page", ["name": "Home"]),
            ("/v1/screen", "/v1/s", "screen", ["name": "Settings"]),
            ("/v1/group", "/v1/g", "group", ["groupId": "g_1"]),
            ("/v1/alias", "/v1/a", "alias", ["previousId": "anon_1"]),
        ]
    }

    @Test func everyRouteStoresItsMessagesUnderItsSource() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        var expected: [String: (type: String, source: String)] = [:]
        try await withCollector(port: server.port) { collector in
            // The batch routes, with Basic auth.
            for path in ["/v1/batch", "/v1/import", "/v1/b"] {
                let name = path.split(separator: "/").last!
                let messages: [[String: Any]] = [
                    track("\(name)-track"),
                    ["type": "identify", "userId": "u_1", "traits": ["plan": "pro"], "messageId": "\(name)-identify"],
                ]
                let answer = try await collector.postBatch(messages, path: path)
                #expect(answer.status == 200, "\(path): \(answer)")
                #expect(answer.accepted == 2 && answer.duplicates == 0 && answer.rejected.isEmpty, "\(path): \(answer)")
                #expect(answer.json["success"] as? Bool == true)
                expected["\(name)-track"] = ("track", "web")
                expected["\(name)-identify"] = ("identify", "web")
            }
            // The single routes: the long ones with Basic auth (the sprig source's key) and no
            // `type` (the route gives it); the short ones as analytics.js posts them, text/plain
            // with `writeKey` and `type` in the body.
            for route in Self.singleRoutes {
                var long = route.fields
                long["userId"] = "u_long"
                long["messageId"] = "long-\(route.type)"
                let longAnswer = try await collector.post(route.long, jsonText(long), auth: .basic(ServeProject.sprigKey))
                #expect(longAnswer.status == 200 && longAnswer.accepted == 1, "\(route.long): \(longAnswer)")
                expected["long-\(route.type)"] = (route.type, "sprig")

                var short = route.fields
                short["userId"] = "u_short"
                short["messageId"] = "short-\(route.type)"
                short["type"] = route.type
                short["writeKey"] = ServeProject.webKey
                let shortAnswer = try await collector.post(
                    route.short, jsonText(short), auth: .none, contentType: "text/plain")
                #expect(shortAnswer.status == 200 && shortAnswer.accepted == 1, "\(route.short): \(shortAnswer)")
                expected["short-\(route.type)"] = (route.type, "web")

                // A `type` that contradicts the route is that message's rejection.
                var wrong = short
                wrong["messageId"] = "wrong-\(route.type)"
                wrong["type"] = route.type == "track" ? "identify" : "track"
                let wrongAnswer = try await collector.post(route.short, jsonText(wrong), auth: .none)
                #expect(wrongAnswer.status == 400, "\(route.short): \(wrongAnswer)")
                #expect(wrongAnswer.rejected.map(\.index) == [0], "\(wrongAnswer)")
                #expect(wrongAnswer.json["success"] as? Bool == false)
            }
            // Segment's Webhooks destination: one message, or an array, signed.
            let one = try await collector.postWebhook(Array(jsonText(track("hook-1")).utf8))
            #expect(one.status == 200 && one.accepted == 1, "\(one)")
            let array = try await collector.postWebhook(
                Array(jsonText([track("hook-2"), ["type": "page", "anonymousId": "a_9", "messageId": "hook-3"]]).utf8))
            #expect(array.status == 200 && array.accepted == 2, "\(array)")
            expected["hook-1"] = ("track", "webhook")
            expected["hook-2"] = ("track", "webhook")
            expected["hook-3"] = ("page", "webhook")
        }
        let exit = try await server.stop()
        #expect(exit.status == 0 && !exit.signaled, "\(exit.stderr)")

        let stored = try project.storedEvents()
        #expect(Set(stored.keys) == Set(expected.keys))
        for (id, want) in expected {
            #expect(stored[id]?.type == want.type && stored[id]?.source == want.source, "\(id): \(String(describing: stored[id]))")
            // The route's type is written into a message that had none.
            #expect(stored[id]?.json["type"] as? String == want.type, "\(id)")
        }
        // A write key given in the body is a secret: it is never stored.
        #expect(!stored.values.contains { $0.message.contains(ServeProject.webKey) || $0.message.contains("writeKey") })
    }

    @Test func writeKeysAndWebhookSignaturesAreChecked() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        let body = jsonText(["batch": [track("refused")]])
        try await withCollector(port: server.port) { collector in
            let noKey = try await collector.post("/v1/batch", body, auth: .none)
            #expect(noKey.status == 401 && noKey.json["success"] as? Bool == false, "\(noKey)")
            let unknown = "wk_unknown_55555"
            let unknownBasic = try await collector.post("/v1/batch", body, auth: .basic(unknown))
            #expect(unknownBasic.status == 401, "\(unknownBasic)")
            #expect(!unknownBasic.body.contains(unknown), "the answer never echoes the key")
            let unknownInBody = try await collector.post(
                "/v1/t", jsonText(track("refused-2").merging(["writeKey": unknown]) { $1 }), auth: .none)
            #expect(unknownInBody.status == 401 && !unknownInBody.body.contains(unknown), "\(unknownInBody)")
            let emptyUser = try await collector.post("/v1/batch", body, auth: .basic(""))
            #expect(emptyUser.status == 401, "\(emptyUser)")
            // The webhook's key is its signature; a write key does not open it.
            let webhookBody = Array(jsonText(track("hook-refused")).utf8)
            let unsigned = try await collector.post("/v1/webhook", webhookBody)
            #expect(unsigned.status == 401, "\(unsigned)")
            let wrongSecret = try await collector.postWebhook(webhookBody, secret: "not-the-secret")
            #expect(wrongSecret.status == 401, "\(wrongSecret)")
            let otherBody = try await collector.request(
                .POST, "/v1/webhook", body: webhookBody,
                headers: [("X-Signature", signature(of: Array("{}".utf8), secret: ServeProject.webhookSecret))])
            #expect(otherBody.status == 401, "\(otherBody)")
            let notHex = try await collector.request(
                .POST, "/v1/webhook", body: webhookBody, headers: [("X-Signature", "sha1=zz")])
            #expect(notHex.status == 401, "\(notHex)")
            #expect(!wrongSecret.body.contains(ServeProject.webhookSecret))
            let signed = try await collector.postWebhook(webhookBody)
            #expect(signed.status == 200 && signed.accepted == 1, "\(signed)")
        }
        try await server.stop()
        #expect(Set(try project.storedEvents().keys) == ["hook-refused"])
        #expect(!server.stderr.contains(ServeProject.webKey) && !server.stderr.contains(ServeProject.webhookSecret))
    }

    @Test func jsonOrTextPlainGzipOrNotAndOtherEncodingsRefused() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let gzipHeader = [("Content-Encoding", "gzip")]
            let batch = gzip(jsonText(["batch": [track("gz-1"), track("gz-2")]]))
            let zipped = try await collector.post("/v1/batch", batch, headers: gzipHeader)
            #expect(zipped.status == 200 && zipped.accepted == 2, "\(zipped)")
            // analytics.js: text/plain, the write key in the body, here gzip-compressed.
            let single = gzip(jsonText(track("gz-3").merging(["writeKey": ServeProject.webKey]) { $1 }))
            let zippedText = try await collector.post(
                "/v1/track", single, auth: .none, contentType: "text/plain", headers: gzipHeader)
            #expect(zippedText.status == 200 && zippedText.accepted == 1, "\(zippedText)")
            let plain = try await collector.post("/v1/p", jsonText(["type": "page", "userId": "u_1", "messageId": "plain-1"]), contentType: "text/plain")
            #expect(plain.status == 200, "\(plain)")
            let identity = try await collector.post(
                "/v1/t", jsonText(track("identity-1")), headers: [("Content-Encoding", "identity")])
            #expect(identity.status == 200, "\(identity)")

            // A gzip stream cut short, bytes that are not gzip, an encoding other than gzip: 415.
            let truncated = try await collector.post("/v1/batch", Array(batch.prefix(batch.count / 2)), headers: gzipHeader)
            #expect(truncated.status == 415, "\(truncated)")
            let notGzip = try await collector.post("/v1/batch", jsonText(["batch": [track("ng-1")]]), headers: gzipHeader)
            #expect(notGzip.status == 415, "\(notGzip)")
            let brotli = try await collector.post(
                "/v1/batch", jsonText(["batch": [track("br-1")]]), headers: [("Content-Encoding", "br")])
            #expect(brotli.status == 415, "\(brotli)")
            // Not JSON: 400.
            let notJSON = try await collector.post("/v1/batch", "batch=1")
            #expect(notJSON.status == 400 && notJSON.json["success"] as? Bool == false, "\(notJSON)")
        }
        try await server.stop()
        #expect(Set(try project.storedEvents().keys) == ["gz-1", "gz-2", "gz-3", "plain-1", "identity-1"])
    }

    @Test func corsPreflightAndOriginsOnEveryAnswer() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let allowed = ServeProject.allowedOrigin
            let preflight = try await collector.request(
                .OPTIONS, "/v1/batch",
                headers: [
                    ("Origin", allowed), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type"),
                ])
            #expect((200..<300).contains(preflight.status), "\(preflight)")
            #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == allowed)
            let methods = Set(
                (preflight.headers.first(name: "Access-Control-Allow-Methods") ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                })
            #expect(methods.isSuperset(of: ["POST", "OPTIONS"]), "\(methods)")
            let allowedHeaders = Set(
                (preflight.headers.first(name: "Access-Control-Allow-Headers") ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces).lowercased()
                })
            #expect(allowedHeaders.isSuperset(of: ["content-type", "authorization", "x-retry-count"]), "\(allowedHeaders)")

            for path in ["/v1/t", "/v1/webhook"] {
                let other = try await collector.request(
                    .OPTIONS, path, headers: [("Origin", "https://evil.example.net"), ("Access-Control-Request-Method", "POST")])
                #expect(other.headers.first(name: "Access-Control-Allow-Origin") == nil, "\(path): \(other.headers)")
                #expect(other.headers.first(name: "Access-Control-Allow-Methods") == nil, "\(path)")
            }

            // The answers themselves carry the allowed origin: a 200, and a 401.
            let posted = try await collector.post(
                "/v1/batch", jsonText(["batch": [track("cors-1")]]), headers: [("Origin", allowed)])
            #expect(posted.status == 200 && posted.headers.first(name: "Access-Control-Allow-Origin") == allowed)
            let refused = try await collector.post(
                "/v1/batch", jsonText(["batch": [track("cors-2")]]), auth: .none, headers: [("Origin", allowed)])
            #expect(refused.status == 401 && refused.headers.first(name: "Access-Control-Allow-Origin") == allowed)
            let foreign = try await collector.post(
                "/v1/batch", jsonText(["batch": [track("cors-3")]]), headers: [("Origin", "https://evil.example.net")])
            #expect(foreign.headers.first(name: "Access-Control-Allow-Origin") == nil)
        }
        try await server.stop()
    }

    @Test func healthMetricsAndUnknownRoutesOrMethods() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let before = try await collector.health()
            #expect(before["status"] as? String == "ok")
            #expect(before["queued_messages"] as? Int == 0 && before["queued_bytes"] as? Int == 0)
            #expect(before["last_commit_at"] is NSNull, "\(before)")

            let batch = try await collector.postBatch([track("m-1"), track("m-2"), ["type": "track", "userId": "u_1"]])
            #expect(batch.status == 200 && batch.accepted == 2 && batch.rejected.map(\.index) == [2], "\(batch)")
            let again = try await collector.postBatch([track("m-1")])
            #expect(again.status == 200 && again.duplicates == 1, "\(again)")
            let single = try await collector.post("/v1/i", jsonText(["userId": "u_1", "messageId": "m-3"]))
            #expect(single.status == 200, "\(single)")

            let after = try await collector.health()
            #expect(after["queued_messages"] as? Int == 0)
            let lastCommit = try #require(after["last_commit_at"] as? String, "\(after)")
            #expect(Timestamp.parse(lastCommit) != nil)

            let unknown = try await collector.get("/v1/nothing")
            #expect(unknown.status == 404, "\(unknown)")
            let getBatch = try await collector.get("/v1/batch")
            #expect(getBatch.status == 405, "\(getBatch)")
            let postHealth = try await collector.post("/health", "{}")
            #expect(postHealth.status == 405, "\(postHealth)")

            let metrics = try await collector.get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
            let samples = Self.samples(metrics.body)
            #expect(samples["audience_sync_messages_accepted_total"] == 3, "\(metrics.body)")
            #expect(samples["audience_sync_messages_duplicate_total"] == 1)
            #expect(samples["audience_sync_messages_rejected_total"] == 1)
            #expect(samples[#"audience_sync_requests_total{route="batch",status="200"}"#] == 2)
            #expect(samples[#"audience_sync_requests_total{route="identify",status="200"}"#] == 1)
            #expect(samples[#"audience_sync_requests_total{route="unknown",status="404"}"#] == 1)
            #expect(samples[#"audience_sync_requests_total{route="health",status="200"}"#] == 2)
            #expect(samples["audience_sync_queued_messages"] == 0)
            #expect((samples["audience_sync_request_bytes_total"] ?? 0) > 0)
            #expect((samples["audience_sync_commit_seconds_count"] ?? 0) >= 1, "\(metrics.body)")
        }
        try await server.stop()
    }

    /// `status --format json` counts the events each source sent, per day of arrival.
    @Test func statusCountsEventsPerSource() async throws {
        let project = try ServeProject()
        let server = try await project.start()
        try await withCollector(port: server.port) { collector in
            let web = try await collector.postBatch([track("s-1"), track("s-2"), track("s-3")])
            #expect(web.accepted == 3, "\(web)")
            for id in ["s-4", "s-5"] {
                let sprig = try await collector.post(
                    "/v1/t", jsonText(track(id).merging(["writeKey": ServeProject.sprigKey]) { $1 }), auth: .none)
                #expect(sprig.accepted == 1, "\(sprig)")
            }
            let hook = try await collector.postWebhook(Array(jsonText(track("s-6")).utf8))
            #expect(hook.accepted == 1, "\(hook)")
        }
        try await server.stop()

        let arrivals = try project.rows("SELECT min(received_at), max(received_at) FROM events")[0].map { $0.int64 ?? 0 }
        let status = try Binary("audience-sync").run(
            ["status", "--format", "json", "--now", Timestamp.format(arrivals[1])], in: project.scratch.path)
        #expect(status.status == 0, "\(status.stderr)")
        let report = try parseJSON(status.stdout)
        let sources = try #require(report["sources"] as? [[String: Any]], "\(report)")
        #expect(sources.map { $0["source"] as? String } == ["sprig", "web", "webhook"])
        #expect(sources.map { $0["events"] as? Int } == [2, 3, 1])
        let day = String(Timestamp.format(arrivals[0]).prefix(10))
        for (source, count) in zip(sources, [2, 3, 1]) {
            let days = source["days"] as? [[String: Any]] ?? []
            #expect(!days.isEmpty)
            #expect(days.filter { $0["day"] as? String == day }.map { $0["events"] as? Int } == [count], "\(days)")
            #expect(days.reduce(0) { $0 + ($1["events"] as? Int ?? 0) } == count)
        }
    }

    /// The samples of a Prometheus text exposition, by name and labels as written.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
