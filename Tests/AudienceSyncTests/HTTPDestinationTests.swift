import Foundation
import Logging
import LoopbackReceiver
import Testing

@testable import AudienceSync

/// The sleeps an HTTP destination asked for, recorded instead of slept.
final class RecordedSleeps: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    var delays: [Double] { lock.withLock { recorded } }
    func record(_ seconds: Double) { lock.withLock { recorded.append(seconds) } }
}

/// A seeded random source that many tasks may draw from.
final class LockedRandom: @unchecked Sendable {
    private let lock = NSLock()
    private var generator: SplitMix64
    init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    func unit() -> Double { lock.withLock { generator.unit() } }
}

/// Hooks that never really wait: sleeps are recorded, jitter is seeded, the clocks stand still.
func testHooks(_ sleeps: RecordedSleeps, wallClock: Date = Date(timeIntervalSince1970: 1_795_348_800)) -> HTTPDeliveryHooks {
    let random = LockedRandom(seed: 7)
    return HTTPDeliveryHooks(
        sleep: { seconds in
            sleeps.record(seconds)
            await Task.yield()
        },
        random: { random.unit() }, monotonic: { 0 }, wallClock: { wallClock })
}

/// An identify message as the outbox holds it; `padding` characters make it bigger.
func outbound(_ index: Int, traits: String = #"{"vip":true}"#, padding: Int = 0) -> OutboundMessage {
    let pad = String(repeating: "x", count: padding)
    let body =
        #"{"type":"identify","userId":"u_\#(index)","traits":\#(traits),"messageId":"m-\#(index)","pad":"\#(pad)"}"#
    return OutboundMessage(id: Int64(index), userId: "u_\(index)", messageId: "m-\(index)", body: body)
}

/// The messageIds of a Segment batch request.
func batchMessageIds(_ request: LoopbackReceiver.Request) throws -> [String] {
    guard case .array(let batch)? = try JSONValue.parse(request.text)["batch"] else { return [] }
    return batch.compactMap { $0["messageId"]?.stringValue }
}

@Suite struct HTTPDestinationTests {
    static let writeKey = "wk_TEST_secret_91"
    static let apiKey = "sk_TEST_secret_37"
    static let sentAt: Int64 = 1_795_348_800_000

    func configuration(
        _ kind: DestinationConfiguration.Kind, _ receiver: LoopbackReceiver, path: String = "/v1/batch",
        timeout: Double = 2, maxRetries: Int = 3, concurrency: Int = 1
    ) -> DestinationConfiguration {
        DestinationConfiguration(
            name: kind.rawValue, kind: kind, endpoint: receiver.url(path), timeout: timeout, maxRetries: maxRetries,
            concurrency: concurrency, rateLimit: 10_000)
    }

    func segment(_ configuration: DestinationConfiguration, _ sleeps: RecordedSleeps) throws -> SegmentDestination {
        try SegmentDestination(
            configuration: configuration, writeKey: Self.writeKey, hooks: testHooks(sleeps), clock: { Self.sentAt },
            logger: silentLogger)
    }

    func sprig(_ configuration: DestinationConfiguration, _ sleeps: RecordedSleeps) throws -> SprigDestination {
        try SprigDestination(configuration: configuration, apiKey: Self.apiKey, hooks: testHooks(sleeps), logger: silentLogger)
    }

    /// Delivers `batch` and closes the destination, as the syncer does.
    func deliver(_ destination: any Destination, _ batch: [OutboundMessage]) async throws -> [DeliveryResult] {
        do {
            let results = try await destination.deliver(batch)
            await destination.close()
            return results
        } catch {
            await destination.close()
            throw error
        }
    }

    // MARK: Segment

    @Test func segmentPostsABatchWithBasicAuth() async throws {
        try await LoopbackReceiver.with { receiver in
            let sleeps = RecordedSleeps()
            let destination = try segment(configuration(.segment, receiver), sleeps)
            let batch = (1...3).map { outbound($0) }
            #expect(try await deliver(destination, batch) == Array(repeating: .acknowledged, count: 3))
            let request = try #require(receiver.requests.first)
            #expect(receiver.requests.count == 1)
            #expect(request.method == "POST" && request.uri == "/v1/batch")
            let authorization = try #require(request.header("Authorization"))
            #expect(authorization.hasPrefix("Basic "))
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map { String(decoding: $0, as: UTF8.self) }
            #expect(decoded == Self.writeKey + ":")
            #expect(request.header("Content-Type") == "application/json")
            let body = try JSONValue.parse(request.text)
            #expect(body["sentAt"] == .string("2026-11-22T12:00:00.000Z"))
            #expect(try batchMessageIds(request) == ["m-1", "m-2", "m-3"])
            // The messages go out byte for byte as the outbox holds them.
            #expect(request.text == #"{"batch":["# + batch.map(\.body).joined(separator: ",") + #"],"sentAt":"2026-11-22T12:00:00.000Z"}"#)
            #expect(sleeps.delays.isEmpty)
        }
    }

    @Test func segmentSplitsAt2500Messages() async throws {
        try await LoopbackReceiver.with { receiver in
            let destination = try segment(configuration(.segment, receiver, concurrency: 2), RecordedSleeps())
            #expect(destination.preferredBatchSize == 5_000)
            let batch = (0..<2_600).map { outbound($0) }
            let results = try await deliver(destination, batch)
            #expect(results.allSatisfy { $0 == .acknowledged } && results.count == 2_600)
            let counts = try receiver.requests.map { try batchMessageIds($0).count }.sorted()
            #expect(counts == [100, 2_500])
            let ids = try Set(receiver.requests.flatMap { try batchMessageIds($0) })
            #expect(ids == Set(batch.map(\.messageId)))
        }
    }

    @Test func segmentSplitsAt500KB() async throws {
        try await LoopbackReceiver.with { receiver in
            let destination = try segment(configuration(.segment, receiver), RecordedSleeps())
            let batch = (0..<40).map { outbound($0, padding: 30_000) }
            let results = try await deliver(destination, batch)
            #expect(results.allSatisfy { $0 == .acknowledged })
            let requests = receiver.requests
            #expect(requests.count == 3)
            #expect(requests.allSatisfy { $0.body.count <= SegmentDestination.maxBatchBytes })
            #expect(try requests.flatMap { try batchMessageIds($0) } == batch.map(\.messageId))
        }
    }

    @Test func segmentFailsAMessageOver32KBWithoutSendingIt() async throws {
        try await LoopbackReceiver.with { receiver in
            let destination = try segment(configuration(.segment, receiver), RecordedSleeps())
            let batch = [outbound(1), outbound(2, padding: 33_000), outbound(3)]
            let results = try await deliver(destination, batch)
            #expect(results[0] == .acknowledged && results[2] == .acknowledged)
            guard case .failed(let reason) = results[1] else {
                Issue.record("expected a failure, got \(results[1])")
                return
            }
            #expect(reason.contains("over Segment's limit of 32768 bytes"))
            #expect(try receiver.requests.flatMap { try batchMessageIds($0) } == ["m-1", "m-3"])
        }
    }

    // MARK: Retries

    @Test func a500IsRetriedWithJitteredBackoff() async throws {
        try await LoopbackReceiver.with(replies: [.status(500), .status(503)]) { receiver in
            let sleeps = RecordedSleeps()
            let destination = try segment(configuration(.segment, receiver), sleeps)
            #expect(try await deliver(destination, [outbound(1), outbound(2)]) == [.acknowledged, .acknowledged])
            #expect(receiver.requests.count == 3)
            #expect(Set(receiver.requests.map(\.text)).count == 1)  // the very same request, same messageIds
            let delays = sleeps.delays
            #expect(delays.count == 2)
            #expect(delays[0] >= 0 && delays[0] < 0.5 && delays[1] >= 0 && delays[1] < 1.0)
        }
    }

    @Test func a429WaitsAsRetryAfterSays() async throws {
        let date = "Sun, 22 Nov 2026 12:00:30 GMT"  // 30 s after the test wall clock
        let replies: [LoopbackReceiver.Reply] = [
            .status(429, headers: [("Retry-After", "7")]), .status(429, headers: [("Retry-After", date)]),
        ]
        try await LoopbackReceiver.with(replies: replies) { receiver in
            let sleeps = RecordedSleeps()
            let destination = try sprig(configuration(.sprig, receiver, path: "/v2/users"), sleeps)
            #expect(try await deliver(destination, [outbound(1)]) == [.acknowledged])
            #expect(receiver.requests.count == 3)
            #expect(sleeps.delays == [7, 30])
        }
    }

    @Test func a400FailsTheBatchWithTheStatusAndNoSecret() async throws {
        let echo = "invalid write key \(Self.writeKey)"
        try await LoopbackReceiver.with(replies: [.status(400, body: echo)]) { receiver in
            let sleeps = RecordedSleeps()
            let destination = try segment(configuration(.segment, receiver), sleeps)
            let results = try await deliver(destination, [outbound(1), outbound(2)])
            #expect(receiver.requests.count == 1)
            #expect(sleeps.delays.isEmpty)
            guard case .failed(let reason) = results[0] else {
                Issue.record("expected a failure, got \(results[0])")
                return
            }
            #expect(results[1] == results[0])
            #expect(reason == "http://127.0.0.1:\(receiver.port)/v1/batch refused the batch: HTTP 400 Bad Request: invalid write key <redacted>")
        }
    }

    @Test func aStalledRequestTimesOutAndIsRetried() async throws {
        try await LoopbackReceiver.with(replies: [.stall]) { receiver in
            let sleeps = RecordedSleeps()
            let destination = try sprig(configuration(.sprig, receiver, timeout: 0.3), sleeps)
            let started = Date()
            #expect(try await deliver(destination, [outbound(1)]) == [.acknowledged])
            #expect(Date().timeIntervalSince(started) >= 0.3)
            // Two requests, unless a loaded machine made the second one time out as well.
            #expect(receiver.requests.count >= 2)
            #expect(sleeps.delays.count == receiver.requests.count - 1)
        }
    }

    @Test func aDroppedConnectionIsRetried() async throws {
        try await LoopbackReceiver.with(replies: [.drop]) { receiver in
            let sleeps = RecordedSleeps()
            let destination = try segment(configuration(.segment, receiver), sleeps)
            #expect(try await deliver(destination, [outbound(1)]) == [.acknowledged])
            #expect(receiver.requests.count == 2)
            #expect(sleeps.delays.count == 1)
        }
    }

    @Test func exhaustedRetriesLeaveTheMessagesPendingAndStopTheRest() async throws {
        try await LoopbackReceiver.with(fallback: { _ in .status(502) }) { receiver in
            let destination = try sprig(configuration(.sprig, receiver, maxRetries: 2), RecordedSleeps())
            let results = try await deliver(destination, (1...5).map { outbound($0) })
            #expect(receiver.requests.count == 3)  // the first user, tried three times; the others not at all
            for result in results {
                guard case .pending(let reason) = result else {
                    Issue.record("expected pending, got \(result)")
                    continue
                }
                #expect(reason.contains("HTTP 502"))
            }
            guard case .pending(let first) = results[0] else { return }
            #expect(first.hasSuffix("HTTP 502 Bad Gateway (3 attempts)"))
        }
    }

    // MARK: Sprig

    @Test func sprigSendsOneUserPerRequestWithBearerAuthAndFlatAttributes() async throws {
        try await LoopbackReceiver.with(fallback: { _ in .status(202) }) { receiver in
            let destination = try sprig(configuration(.sprig, receiver, path: "/v2/users"), RecordedSleeps())
            let batch = [
                outbound(1, traits: #"{"nps_detractors":true}"#),
                outbound(2, traits: #"{"plan":{"tier":"pro","seats":3,"owner":{"since":2024}},"churn_risk":null,"tags":["a"]}"#),
            ]
            #expect(try await deliver(destination, batch) == [.acknowledged, .acknowledged])
            let requests = receiver.requests
            #expect(requests.count == 2)
            #expect(requests.allSatisfy { $0.header("Authorization") == "Bearer \(Self.apiKey)" && $0.uri == "/v2/users" })
            #expect(requests.map(\.text).sorted() == [
                #"{"userId":"u_1","attributes":{"nps_detractors":true}}"#,
                #"{"userId":"u_2","attributes":{"plan.tier":"pro","plan.seats":3,"plan.owner.since":2024,"churn_risk":null,"tags":["a"]}}"#,
            ])
        }
    }

    @Test func concurrencyBoundsTheRequestsInFlight() async throws {
        try await LoopbackReceiver.with(fallback: { _ in .status(202, delay: 0.03) }) { receiver in
            let destination = try sprig(configuration(.sprig, receiver, concurrency: 3), RecordedSleeps())
            let results = try await deliver(destination, (1...15).map { outbound($0) })
            #expect(results.allSatisfy { $0 == .acknowledged })
            #expect(receiver.requests.count == 15)
            #expect(receiver.maxInFlight <= 3)
            #expect(receiver.maxInFlight >= 2)
        }
    }

    @Test func plainHTTPToAnotherHostIsRefused() async throws {
        let configuration = DestinationConfiguration(
            name: "segment", kind: .segment, endpoint: URL(string: "http://collector.example.com/v1/batch"))
        #expect(throws: AudienceSyncError.self) {
            try SegmentDestination(configuration: configuration, writeKey: Self.writeKey, logger: silentLogger)
        }
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "c.yml",
            "destinations:\n  - {name: s, type: sprig, api_key: 'env:K', endpoint: 'http://10.0.0.8/v2/users'}\n")
        let lines = errorLines { _ = try Configuration.load(file: file) }
        #expect(lines.first?.contains("plain http is refused for host '10.0.0.8'") == true)
    }

    @Test func sprigRefusesSendAsTrack() async throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "c.yml", "destinations:\n  - {name: s, type: sprig, api_key: 'env:K', send_as: track}\n")
        let lines = errorLines { _ = try Configuration.load(file: file) }
        #expect(lines.first?.contains("send_as: track is not available for a sprig destination") == true)
    }
}

/// The HTTP destinations driven by the syncer: what a refusal and an outage do to the outbox and
/// the snapshot.
@Suite struct HTTPSyncTests {
    /// Runs `body` with the demo harness on a store of `kind` with a `segment` destination
    /// pointing at `receiver`, its key in a file.
    func withHarness(
        _ kind: StoreKind, _ receiver: LoopbackReceiver, maxRetries: Int = 2, _ body: (SyncHarness) async throws -> Void
    ) async throws {
        let segment = """
              - name: segment
                type: segment
                write_key: file:keys/segment
                endpoint: http://127.0.0.1:\(receiver.port)/v1/batch
                max_retries: \(maxRetries)
                rate_limit: 10000
            """
        try await SyncHarness.with(kind, extraDestinations: segment) { (harness: SyncHarness) async throws in
            try harness.directory.write("keys/segment", "\(HTTPDestinationTests.writeKey)\n")
            try await harness.ingest("events.ndjson")
            try await body(harness)
        }
    }

    func sync(_ harness: SyncHarness, _ sleeps: RecordedSleeps, now: Int64) async throws -> SyncReport {
        let syncer = Syncer(
            engine: harness.engine, state: harness.store, configuration: harness.configuration, logger: silentLogger,
            destinations: DestinationFactory {
                try DestinationFactory.standardDestination($0, logger: silentLogger, hooks: testHooks(sleeps))
            })
        return try await syncer.sync(
            SyncSelection(definitions: ["order_completed_last_30days"], destinations: ["segment"]), now: now)
    }

    func outboxStates(_ harness: SyncHarness) async throws -> [String] {
        try await harness.outbox().filter { $0.pair.destination == "segment" }.map { "\($0.state):\($0.reason ?? "")" }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func aRefusedBatchIsFailedAndStaysOutOfTheSnapshot(kind: StoreKind) async throws {
        try await LoopbackReceiver.with(replies: [.status(400, body: #"{"error":"bad batch"}"#)]) { receiver in
            try await withHarness(kind, receiver) { (harness: SyncHarness) async throws in
                let report = try await sync(harness, RecordedSleeps(), now: demoNow)
                let pair = try #require(report.pairs.first)
                #expect(pair.failed == 7 && pair.sent == 0 && pair.pending == 0)
                #expect(report.hasFailures)
                await #expect(try harness.snapshot("order_completed_last_30days", destination: "segment").isEmpty)
                let states = try await outboxStates(harness)
                #expect(states.count == 7)
                #expect(states.allSatisfy { $0.hasPrefix("failed:") && $0.contains(#"HTTP 400 Bad Request: {"error":"bad batch"}"#) })
                #expect(!states.joined().contains(HTTPDestinationTests.writeKey))
            }
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func anOutageLeavesTheBatchPendingAndTheNextRunSendsTheSameMessages(kind: StoreKind) async throws {
        let outage: [LoopbackReceiver.Reply] = [.status(503), .status(500), .status(502)]
        try await LoopbackReceiver.with(replies: outage) { receiver in
            try await withHarness(kind, receiver, maxRetries: 2) { (harness: SyncHarness) async throws in
                let sleeps = RecordedSleeps()
                let first = try await sync(harness, sleeps, now: demoNow)
                let pair = try #require(first.pairs.first)
                #expect(pair.pending == 7 && pair.failed == 0 && pair.sent == 0)
                #expect(first.hasFailures)
                #expect(sleeps.delays.count == 2)
                await #expect(try harness.snapshot("order_completed_last_30days", destination: "segment").isEmpty)
                await #expect(try outboxStates(harness).allSatisfy { $0 == "pending:" })
                // The dry run lists the pending messages the next sync resumes, as it does for a file.
                let dryRun = try await harness.syncer().dryRun(
                    SyncSelection(definitions: ["order_completed_last_30days"], destinations: ["segment"]),
                    now: demoNow + 60_000)
                #expect(dryRun.messages.count == 7 && dryRun.pairs.first?.counts.pending == 7)

                let second = try await sync(harness, sleeps, now: demoNow + 60_000)
                let resumed = try #require(second.pairs.first)
                #expect(resumed.resumed == 7 && resumed.pending == 0)
                #expect(!second.hasFailures)
                await #expect(try harness.snapshot("order_completed_last_30days", destination: "segment").count == 7)
                let requests = receiver.requests
                #expect(requests.count == 4)
                let sent = try batchMessageIds(requests[0])
                #expect(sent.count == 7)
                #expect(try batchMessageIds(requests[3]) == sent)
            }
        }
    }
}
