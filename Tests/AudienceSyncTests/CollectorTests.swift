import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SharedTestSupport
import Testing
import Yams

@testable import AudienceSync

/// The collection endpoint's answers, route by route (SPEC §11.2), through Hummingbird's test
/// client against a real store and committer.
@Suite struct CollectorTests {
    static let writeKey = "wk_test_1234"
    static let webhookSecret = "hook-secret"
    /// The server's clock: every request is received at this time.
    static let receivedAt: Int64 = 1_795_348_800_000

    /// A store, a committer running on it, and the responder, for `body`.
    static func withCollector(
        _ extra: String = "", maxQueuedBytes: Int? = nil,
        _ body: @Sendable (any TestClientProtocol, SQLiteStore) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "audience-sync.yml",
            """
            database: audiences.db
            server:
              sources:
                - name: web
                  write_key: env:WEB_KEY
                - name: app
                  write_key: env:APP_KEY
              webhook_secret: env:HOOK_SECRET
              cors_origins: [https://app.example.com]
              max_request_bytes: 200000
            \(extra)
            """)
        var configuration = try Configuration.parse(try String(contentsOfFile: file, encoding: .utf8), file: file)
        if let maxQueuedBytes { configuration.server?.maxQueuedBytes = maxQueuedBytes }
        let store = try await SQLiteStore(path: configuration.databasePath)
        try await withCollector(configuration: configuration, store: store) { client, _ in try await body(client, store) }
    }

    /// The collector of `configuration` writing to `store`, for `body`.
    static func withCollector(
        configuration: Configuration, store: any Store,
        _ body: @Sendable (any TestClientProtocol, any Store) async throws -> Void
    ) async throws {
        let server = try CollectorServer(
            configuration: configuration, store: store, logger: silentLogger,
            environment: ["WEB_KEY": writeKey, "APP_KEY": "wk_app", "HOOK_SECRET": webhookSecret],
            clock: { receivedAt })
        let metrics = CollectorMetrics()
        let committer = Committer(
            maxQueuedBytes: configuration.server!.maxQueuedBytes, logger: silentLogger, metrics: metrics,
            clock: { receivedAt })
        let app = Application(responder: server.makeResponder(committer: committer, metrics: metrics))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await CommitterService(store: store, committer: committer).run() }
            do {
                try await app.test(.router) { client in try await body(client, store) }
            } catch {
                committer.stop()
                throw error
            }
            committer.stop()
            try await group.waitForAll()
        }
    }

    /// The collector writes through any store: batches, duplicates, sources and the text a
    /// PostgreSQL store cannot hold (rejected by index, the rest stored).
    @Test(arguments: StoreKind.allCases)
    func everyStoreTakesBatches(kind: StoreKind) async throws {
        try await kind.withStore { (store: any Store, directory: TemporaryDirectory) async throws in
            let file = try directory.write(
                "audience-sync.yml", "server:\n  sources:\n    - name: web\n      write_key: env:WEB_KEY\n")
            let configuration = try Configuration.parse(try String(contentsOfFile: file, encoding: .utf8), file: file)
            try await Self.withCollector(configuration: configuration, store: store) { client, store in
                let nul = #"{"type":"track","event":"E","userId":"u2","messageId":"m3","properties":{"a":"\u0000"}}"#
                let body = #"{"batch":[\#(Self.track("m1")),\#(Self.track("m2", user: "u2")),\#(Self.track("m1")),\#(nul)]}"#
                try await client.execute(uri: "/v1/batch", method: .post, headers: Self.basic, body: ByteBuffer(string: body)) {
                    #expect($0.status == .ok)
                    let answer = try Self.json($0)
                    #expect(answer["accepted"] == .int(kind == .postgres ? 2 : 3) && answer["duplicates"] == .int(1))
                    let rejected = answer["rejected"]?.arrayValue ?? []
                    #expect(rejected.map { $0["index"] } == (kind == .postgres ? [.int(3)] : []))
                }
                #expect(try await store.eventCount() == (kind == .postgres ? 2 : 3))
                #expect(try await store.users(now: Self.receivedAt) == ["u1", "u2"])
                #expect(
                    try await store.arrivals(from: 0)
                        == [Arrivals(source: "web", day: Self.receivedAt / 86_400_000, count: kind == .postgres ? 2 : 3)])
            }
        }
    }

    static var basic: HTTPFields {
        var headers = HTTPFields()
        headers[.authorization] = "Basic " + Data("\(writeKey):".utf8).base64EncodedString()
        headers[.contentType] = "application/json"
        return headers
    }

    static func json(_ response: TestResponse) throws -> JSONValue {
        try JSONValue.parse(String(buffer: response.body))
    }

    static func track(_ id: String?, user: String = "u1", extra: String = "") -> String {
        let messageId = id.map { #","messageId":"\#($0)""# } ?? ""
        return #"{"type":"track","event":"E","userId":"\#(user)"\#(messageId)\#(extra)}"#
    }

    // MARK: 200

    @Test func aBatchIsStoredWithItsRejectionsAndDuplicatesCounted() async throws {
        try await Self.withCollector { client, store in
            let body = #"{"batch":[\#(Self.track("m1")),{"type":"nope","userId":"u"},\#(Self.track("m1")),"x"]}"#
            try await client.execute(uri: "/v1/batch", method: .post, headers: Self.basic, body: ByteBuffer(string: body)) {
                #expect($0.status == .ok)
                let answer = try Self.json($0)
                #expect(answer["success"] == .bool(true))
                #expect(answer["accepted"] == .int(1) && answer["duplicates"] == .int(1))
                let rejected = answer["rejected"]?.arrayValue ?? []
                #expect(rejected.map { $0["index"] } == [.int(1), .int(3)])
                #expect(rejected.first?["reason"]?.stringValue?.contains("unknown type 'nope'") == true)
            }
            #expect(try await store.eventCount() == 1)
            // The source is stored with the message, and counted for `status`.
            let arrivals = try await store.arrivals(from: 0)
            #expect(arrivals == [Arrivals(source: "web", day: Self.receivedAt / 86_400_000, count: 1)])
        }
    }

    @Test(arguments: ["/v1/batch", "/v1/import", "/v1/b"])
    func everyBatchRoute(path: String) async throws {
        try await Self.withCollector { client, store in
            try await client.execute(
                uri: path, method: .post, headers: Self.basic,
                body: ByteBuffer(string: #"{"batch":[\#(Self.track("m1")),\#(Self.track("m2"))]}"#)
            ) { #expect($0.status == .ok) }
            #expect(try await store.eventCount() == 2)
        }
    }

    @Test(arguments: [
        ("/v1/track", "track"), ("/v1/t", "track"), ("/v1/identify", "identify"), ("/v1/i", "identify"),
        ("/v1/page", "page"), ("/v1/p", "page"), ("/v1/screen", "screen"), ("/v1/s", "screen"),
        ("/v1/group", "group"), ("/v1/g", "group"), ("/v1/alias", "alias"), ("/v1/a", "alias"),
    ])
    func everySingleRouteTakesItsTypeWhenTheMessageHasNone(path: String, type: String) async throws {
        try await Self.withCollector { client, store in
            // No `type`: the route's; writeKey in the body; text/plain as analytics.js sends it.
            let fields = type == "track" ? #","event":"E""# : type == "alias" ? #","previousId":"a1""# : ""
            let body = #"{"writeKey":"\#(Self.writeKey)","userId":"u1","messageId":"m-\#(type)"\#(fields)}"#
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) {
                #expect($0.status == .ok, "\(path)")
            }
            let rows = try await store.rows(
                CompiledQuery(sql: "SELECT type, message, source FROM events", binds: []))
            #expect(rows.first?[0] == .text(type))
            let stored = try JSONValue.parse(rows.first?[1].string ?? "")
            #expect(stored["type"] == .string(type))
            #expect(stored["writeKey"] == nil, "the write key is never stored")
            #expect(stored["receivedAt"] == .string(Timestamp.format(Self.receivedAt)))
            #expect(rows.first?[2] == .text("web"))
        }
    }

    @Test func aTypeThatContradictsTheRouteIsRefused() async throws {
        try await Self.withCollector { client, store in
            try await client.execute(
                uri: "/v1/track", method: .post, headers: Self.basic,
                body: ByteBuffer(string: #"{"type":"identify","userId":"u1"}"#)
            ) { response async throws in
                #expect(response.status == .badRequest)
                #expect(try Self.json(response)["error"]?.stringValue?.contains("this route takes track messages") == true)
            }
            #expect(try await store.eventCount() == 0)
        }
    }

    /// The server's receivedAt replaces a client's, and Segment's clock-skew correction gives the
    /// event time of a message with originalTimestamp and sentAt but no timestamp.
    @Test func receivedAtIsTheServersAndTheClockSkewIsCorrected() async throws {
        try await Self.withCollector { client, store in
            let skewed = Self.track(
                "skew", extra: #","originalTimestamp":"2020-01-01T00:00:00.000Z","sentAt":"2020-01-01T00:00:05.000Z","receivedAt":"1999-01-01T00:00:00Z""#)
            let stamped = Self.track("stamped", extra: #","timestamp":"2026-11-01T00:00:00Z","sentAt":"2020-01-01T00:00:05.000Z""#)
            let plain = Self.track("plain", extra: #","sentAt":"2020-01-01T00:00:05.000Z""#)
            try await client.execute(
                uri: "/v1/batch", method: .post, headers: Self.basic,
                body: ByteBuffer(string: #"{"batch":[\#(skewed),\#(stamped),\#(plain)]}"#)
            ) { #expect($0.status == .ok) }
            let rows = try await store.rows(
                CompiledQuery(sql: "SELECT message_id, ts, received_at, message FROM events ORDER BY message_id", binds: []))
            let byId = Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string ?? "", $0) })
            #expect(byId["skew"]?[1] == .integer(Self.receivedAt - 5_000))
            #expect(byId["stamped"]?[1] == .integer(Timestamp.parse("2026-11-01T00:00:00Z")!))
            #expect(byId["plain"]?[1] == .integer(Self.receivedAt), "receivedAt comes before sentAt")
            for row in rows {
                #expect(row[2] == .integer(Self.receivedAt))
                let message = try JSONValue.parse(row[3].string ?? "")
                #expect(message["receivedAt"] == .string(Timestamp.format(Self.receivedAt)))
            }
        }
    }

    /// A message without messageId gets an id derived from what the client sent, so a retry of the
    /// same request is a duplicate, whatever the server's receivedAt.
    @Test func aRetryOfAMessageWithoutIdIsADuplicate() async throws {
        try await Self.withCollector { client, store in
            for expected in [(1, 0), (0, 1)] {
                try await client.execute(
                    uri: "/v1/track", method: .post, headers: Self.basic, body: ByteBuffer(string: Self.track(nil))
                ) {
                    let answer = try Self.json($0)
                    #expect(answer["accepted"] == .int(expected.0) && answer["duplicates"] == .int(expected.1))
                }
            }
            #expect(try await store.eventCount() == 1)
        }
    }

    @Test func gzipBodiesAreInflatedAndTheSizeIsCheckedOnTheInflatedBytes() async throws {
        try await Self.withCollector { client, store in
            var headers = Self.basic
            headers[.contentEncoding] = "gzip"
            try await client.execute(
                uri: "/v1/batch", method: .post, headers: headers,
                body: ByteBuffer(bytes: gzip(Array(#"{"batch":[\#(Self.track("g1"))]}"#.utf8)))
            ) { #expect($0.status == .ok) }
            // 300 KB of JSON that compresses to a few KB: over the 200,000-byte limit once inflated.
            let padding = String(repeating: "a", count: 300_000)
            let large = gzip(Array(#"{"batch":[\#(Self.track("g2", extra: #","properties":{"p":"\#(padding)"}"#))]}"#.utf8))
            #expect(large.count < 10_000)
            try await client.execute(uri: "/v1/batch", method: .post, headers: headers, body: ByteBuffer(bytes: large)) {
                #expect($0.status == .contentTooLarge)
            }
            try await client.execute(
                uri: "/v1/batch", method: .post, headers: headers, body: ByteBuffer(string: "not gzip at all")
            ) { #expect($0.status == .unsupportedMediaType) }
            var brotli = Self.basic
            brotli[.contentEncoding] = "br"
            try await client.execute(
                uri: "/v1/track", method: .post, headers: brotli, body: ByteBuffer(string: Self.track("b1"))
            ) { #expect($0.status == .unsupportedMediaType) }
            #expect(try await store.eventCount() == 1)
        }
    }

    @Test func aMessageOverItsLimitIsRejectedAloneAndARequestOverItsLimitIs413() async throws {
        try await Self.withCollector { client, store in
            let big = Self.track("big", extra: #","properties":{"p":"\#(String(repeating: "x", count: 40_000))"}"#)
            try await client.execute(
                uri: "/v1/batch", method: .post, headers: Self.basic,
                body: ByteBuffer(string: #"{"batch":[\#(Self.track("small")),\#(big)]}"#)
            ) {
                #expect($0.status == .ok)
                let rejected = try Self.json($0)["rejected"]?.arrayValue ?? []
                #expect(rejected.count == 1 && rejected.first?["index"] == .int(1))
                #expect(rejected.first?["reason"]?.stringValue?.contains("over the limit of 32768 bytes") == true)
            }
            try await client.execute(
                uri: "/v1/batch", method: .post, headers: Self.basic,
                body: ByteBuffer(string: #"{"batch":[\#(String(repeating: "\(Self.track(nil)),", count: 6_000))\#(Self.track(nil))]}"#)
            ) { #expect($0.status == .contentTooLarge) }
            #expect(try await store.eventCount() == 1)
        }
    }

    // MARK: 400, 401, 404, 405

    @Test(arguments: [
        ("/v1/batch", "{not json", "not valid JSON"), ("/v1/batch", "[1]", "batch envelope"),
        ("/v1/batch", #"{"batch":[]}"#, "no messages"), ("/v1/track", "[]", "must be a JSON object"),
        ("/v1/batch", #"{"batch":[{"type":"track"}]}"#, "every message was rejected"),
    ])
    func unusableBodiesAre400(path: String, body: String, reason: String) async throws {
        try await Self.withCollector { client, _ in
            try await client.execute(uri: path, method: .post, headers: Self.basic, body: ByteBuffer(string: body)) {
                #expect($0.status == .badRequest)
                let answer = try Self.json($0)
                #expect(answer["success"] == .bool(false))
                #expect(answer["error"]?.stringValue?.contains(reason) == true, "\(answer)")
                #expect(answer["rejected"]?.arrayValue != nil)
            }
        }
    }

    @Test func writeKeysAreRequiredAndNeverEchoed() async throws {
        try await Self.withCollector { client, store in
            try await client.execute(uri: "/v1/track", method: .post, body: ByteBuffer(string: Self.track("a"))) {
                #expect($0.status == .unauthorized)
            }
            var wrong = HTTPFields()
            wrong[.authorization] = "Basic " + Data("wk_guess:".utf8).base64EncodedString()
            try await client.execute(uri: "/v1/track", method: .post, headers: wrong, body: ByteBuffer(string: Self.track("a"))) {
                #expect($0.status == .unauthorized)
                #expect(!String(buffer: $0.body).contains("wk_guess"))
            }
            // The second source's key works, and its name is stored.
            var app = HTTPFields()
            app[.authorization] = "Basic " + Data("wk_app:".utf8).base64EncodedString()
            try await client.execute(uri: "/v1/track", method: .post, headers: app, body: ByteBuffer(string: Self.track("a"))) {
                #expect($0.status == .ok)
            }
            let rows = try await store.rows(CompiledQuery(sql: "SELECT source FROM events", binds: []))
            #expect(rows == [[.text("app")]])
        }
    }

    @Test func theWebhookIsSignedWithHMACSHA1() async throws {
        try await Self.withCollector { client, store in
            let body = Array(#"[\#(Self.track("w1")),\#(Self.track("w2"))]"#.utf8)
            let key = SymmetricKey(data: Array(Self.webhookSecret.utf8))
            let signature = Hex.string(HMAC<Insecure.SHA1>.authenticationCode(for: body, using: key))
            var headers = HTTPFields()
            headers[HTTPField.Name("X-Signature")!] = signature
            try await client.execute(uri: "/v1/webhook", method: .post, headers: headers, body: ByteBuffer(bytes: body)) { response async throws in
                #expect(response.status == .ok)
                #expect(try Self.json(response)["accepted"] == .int(2))
            }
            headers[HTTPField.Name("X-Signature")!] = String(signature.reversed())
            try await client.execute(uri: "/v1/webhook", method: .post, headers: headers, body: ByteBuffer(bytes: body)) {
                #expect($0.status == .unauthorized)
            }
            // A write key does not open the webhook.
            try await client.execute(uri: "/v1/webhook", method: .post, headers: Self.basic, body: ByteBuffer(bytes: body)) {
                #expect($0.status == .unauthorized)
            }
            #expect(try await store.rows(CompiledQuery(sql: "SELECT DISTINCT source FROM events", binds: [])) == [[.text("webhook")]])
        }
    }

    @Test func unknownRoutesAre404AndOtherMethods405() async throws {
        try await Self.withCollector { client, _ in
            try await client.execute(uri: "/v1/nope", method: .post, headers: Self.basic) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/batch", method: .get) {
                #expect($0.status == .methodNotAllowed)
                #expect($0.headers[.allow] == "POST, OPTIONS")
            }
            try await client.execute(uri: "/health", method: .post) { #expect($0.status == .methodNotAllowed) }
        }
    }

    // MARK: CORS, health, metrics

    @Test func corsPreflightAndAnswersForAllowedOriginsOnly() async throws {
        try await Self.withCollector { client, _ in
            var allowed = HTTPFields()
            allowed[.origin] = "https://app.example.com"
            try await client.execute(uri: "/v1/t", method: .options, headers: allowed) {
                #expect($0.status == .noContent)
                #expect($0.headers[.accessControlAllowOrigin] == "https://app.example.com")
                #expect($0.headers[.accessControlAllowMethods] == "POST, OPTIONS")
                #expect($0.headers[.accessControlAllowHeaders] == "Content-Type, Authorization, X-Retry-Count")
            }
            var other = HTTPFields()
            other[.origin] = "https://evil.example.com"
            try await client.execute(uri: "/v1/t", method: .options, headers: other) {
                #expect($0.headers[.accessControlAllowOrigin] == nil)
            }
            var post = Self.basic
            post[.origin] = "https://app.example.com"
            try await client.execute(uri: "/v1/t", method: .post, headers: post, body: ByteBuffer(string: Self.track("c1"))) {
                #expect($0.headers[.accessControlAllowOrigin] == "https://app.example.com")
            }
        }
    }

    @Test func healthAndMetricsTellWhatWasDone() async throws {
        try await Self.withCollector { client, _ in
            try await client.execute(uri: "/health", method: .get) {
                let health = try Self.json($0)
                #expect(health["status"] == .string("ok") && health["last_commit_at"] == .null)
                #expect(health["queued_messages"] == .int(0) && health["queued_bytes"] == .int(0))
            }
            try await client.execute(uri: "/v1/track", method: .post, headers: Self.basic, body: ByteBuffer(string: Self.track("h1")))
            try await client.execute(uri: "/health", method: .get) { response async throws in
                #expect(try Self.json(response)["last_commit_at"] == .string(Timestamp.format(Self.receivedAt)))
            }
            try await client.execute(uri: "/metrics", method: .get) {
                let text = String(buffer: $0.body)
                #expect(text.contains(#"audience_sync_requests_total{route="track",status="200"} 1"#))
                #expect(text.contains("audience_sync_messages_accepted_total 1"))
                #expect(text.contains("audience_sync_commit_seconds_bucket"))
                #expect(text.contains("audience_sync_queued_messages 0"))
            }
        }
    }

    // MARK: 503

    /// While another process holds the store's write lock, requests wait; past the queue's bound
    /// they are answered 503 with Retry-After; once the lock is free, the waiting ones are stored.
    @Test func aFullQueueIs503AndTheWaitingRequestsAreStoredOnceTheLockIsFree() async throws {
        try await Self.withCollector(maxQueuedBytes: 300) { client, store in
            let blocker = try Database(path: store.path)
            try blocker.execute("BEGIN IMMEDIATE")
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                group.addTask {
                    try await client.execute(
                        uri: "/v1/track", method: .post, headers: Self.basic, body: ByteBuffer(string: Self.track("q1"))
                    ) { $0.status }
                }
                // Wait (without sleeping) until the first request is queued.
                while await Self.queued(client) == 0 { await Task.yield() }
                let refused = try await client.execute(
                    uri: "/v1/track", method: .post, headers: Self.basic,
                    body: ByteBuffer(string: Self.track("q2", extra: #","properties":{"p":"\#(String(repeating: "y", count: 400))"}"#))
                ) { $0 }
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.headers[.retryAfter] == "1")
                try blocker.execute("ROLLBACK")
                #expect(try await group.next() == .ok)
            }
            #expect(try await store.eventCount() == 1)
        }
    }

    static func queued(_ client: any TestClientProtocol) async -> Int {
        let health = try? await client.execute(uri: "/health", method: .get) { try Self.json($0) }
        return Int(health?["queued_messages"].flatMap { if case .number(let n) = $0 { Int(n) } else { nil } } ?? 0)
    }
}

/// `openapi.yaml` describes the HTTP API as it is: every operation in it is exercised against the
/// collector and answers with a status the file documents, and every route the server takes is in it.
@Suite struct OpenAPITests {
    struct Operation: Hashable, CustomStringConvertible {
        var path: String
        var method: String
        var statuses: Set<String>
        var description: String { "\(method.uppercased()) \(path)" }
    }

    static func operations() throws -> [Operation] {
        let text = try String(contentsOfFile: repositoryRoot + "/openapi.yaml", encoding: .utf8)
        guard let document = try Yams.load(yaml: text) as? [String: Any], let paths = document["paths"] as? [String: Any]
        else { throw AudienceSyncError(.input, "openapi.yaml has no paths") }
        var result: [Operation] = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in ["get", "post", "options", "head", "put", "delete"] {
                guard let operation = item[method] as? [String: Any] else { continue }
                let responses = (operation["responses"] as? [AnyHashable: Any] ?? [:]).keys.map { "\($0)" }
                result.append(Operation(path: path, method: method, statuses: Set(responses)))
            }
        }
        return result.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    /// A body the route takes.
    static func body(for path: String) -> String {
        let type: String
        switch path {
        case "/v1/batch", "/v1/import", "/v1/b": return #"{"batch":[\#(CollectorTests.track(nil, user: path))]}"#
        case "/v1/webhook": return CollectorTests.track(nil, user: "webhook")
        case "/v1/identify", "/v1/i": type = "identify"
        case "/v1/page", "/v1/p": type = "page"
        case "/v1/screen", "/v1/s": type = "screen"
        case "/v1/group", "/v1/g": type = "group"
        case "/v1/alias", "/v1/a": return #"{"type":"alias","userId":"u\#(path)","previousId":"a1"}"#
        default: return CollectorTests.track(nil, user: path)
        }
        return #"{"type":"\#(type)","userId":"u\#(path)"}"#
    }

    @Test func everyOperationAnswersAsDocumentedAndEveryRouteIsDocumented() async throws {
        let operations = try Self.operations()
        #expect(operations.count >= 30)
        // Every route the server knows, with its methods, is documented.
        let paths = Set(operations.map(\.path))
        for path in [
            "/v1/batch", "/v1/import", "/v1/b", "/v1/track", "/v1/t", "/v1/identify", "/v1/i", "/v1/page", "/v1/p",
            "/v1/screen", "/v1/s", "/v1/group", "/v1/g", "/v1/alias", "/v1/a", "/v1/webhook", "/health", "/metrics",
        ] {
            #expect(paths.contains(path), "\(path) is not in openapi.yaml")
            #expect(CollectorRoute(path: path) != nil, "\(path) is documented but not served")
        }
        try await CollectorTests.withCollector { client, _ in
            for operation in operations {
                var headers = CollectorTests.basic
                headers[.origin] = "https://app.example.com"
                var body: ByteBuffer?
                if operation.method == "post" {
                    let text = Self.body(for: operation.path)
                    body = ByteBuffer(string: text)
                    if operation.path == "/v1/webhook" {
                        let key = SymmetricKey(data: Array(CollectorTests.webhookSecret.utf8))
                        headers[HTTPField.Name("X-Signature")!] = Hex.string(
                            HMAC<Insecure.SHA1>.authenticationCode(for: Array(text.utf8), using: key))
                    }
                }
                let status = try await client.execute(
                    uri: operation.path, method: HTTPRequest.Method(operation.method.uppercased())!, headers: headers,
                    body: body
                ) { $0.status.code }
                #expect(operation.statuses.contains(String(status)), "\(operation) answered \(status)")
                let expected = operation.method == "options" ? 204 : 200
                #expect(status == expected, "\(operation) answered \(status)")
            }
        }
    }
}
