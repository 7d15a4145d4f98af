import AudienceSync
import Foundation
import LoopbackReceiver
import Testing

/// SPEC §6's guarantees under faults, with the real binary: many syncs, as cron runs them, to a
/// Segment-compatible receiver that answers 500s, 429s, slow answers, stalls, dropped connections
/// and refusals, while some syncs are SIGKILLed mid-delivery. See `FaultScenario` for what is
/// checked after each run.
///
/// Deterministic for a seed: set `AUDIENCE_SYNC_FAULT_SEED` to replay one; every failure names
/// its seed and run. Runs with the state in SQLite and in PostgreSQL.
@Suite struct SyncFaultTests {
    static let defaultSeed: UInt64 = 20_261_122

    @Test(arguments: StoreKind.allCases) func manySyncsUnderFaultsAndKillsLoseNothing(_ kind: StoreKind) async throws {
        let seed =
            ProcessInfo.processInfo.environment["AUDIENCE_SYNC_FAULT_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
        let scratch = try ScratchDirectory()
        try await TestStore.with(kind, in: scratch) { (store: TestStore) async throws -> Void in
            let scenario = FaultScenario(seed: seed, runs: 20, scratch: scratch, store: store)
            try await scenario.receiver.start()
            do {
                try await scenario.run()
                await scenario.receiver.stop()
            } catch {
                await scenario.receiver.stop()
                Issue.record("\(kind), seed \(seed), run \(scenario.run): \(error)")
            }
        }
    }
}

/// What the receiver does during the current sync. The receiver's plan asks it about every request.
final class RunControl: @unchecked Sendable {
    enum Mode: String, Sendable {
        /// Seeded faults that a batch survives within its retries, and occasional refusals.
        case faults
        /// Every new batch answered 429 until its retries run out: the run leaves it pending.
        case outage
        /// 200 for everything.
        case clean
    }

    /// Kill the binary when the run's `atRequest`-th request arrives: that request is held
    /// unanswered, or (`afterHead`) its 200 status line is written and its body held back.
    struct Kill: Sendable, CustomStringConvertible {
        var atRequest: Int
        var afterHead: Bool
        var description: String { "kill at request \(atRequest)\(afterHead ? " after its 200 status line" : "")" }
    }

    /// The seeded faults, in proportion: 5xx, 429 with `Retry-After: 0`, dropped connections, slow
    /// answers, a refusal, and a stall the client's timeout ends.
    static let faults: [LoopbackReceiver.Reply] = [
        .status(500), .status(500), .status(503), .tooManyRequests(retryAfter: "0"),
        .tooManyRequests(retryAfter: "0"), .tooManyRequests(retryAfter: "0"), .drop, .drop,
        .status(200, body: #"{"success":true}"#, delay: 0.05), .status(200, body: #"{"success":true}"#, delay: 0.05),
        .status(400, body: #"{"error":"invalid batch"}"#), .stall,
    ]

    private let lock = NSLock()
    private let seeded: LoopbackReceiver.Plan
    private var mode = Mode.clean
    private var kill: Kill?
    private var arrivals = 0
    /// messageIds pending in the outbox before the run: a batch of only these is a resumed one.
    private var resumable: Set<String> = []
    private var onKill: (@Sendable () -> Void)?
    private var killedRequest: Int?
    private var replies: [String: Int] = [:]

    /// `maxFaults` must stay below the destinations' attempts (`max_retries` + 1), so that a batch
    /// always gets through in a faults run.
    init(seed: UInt64, maxFaults: Int) {
        seeded = .seeded(seed, rate: 0.25, faults: Self.faults, maxFaults: maxFaults)
    }

    func arm(_ mode: Mode, kill: Kill?, resumable: Set<String>, onKill: @escaping @Sendable () -> Void) {
        lock.withLock {
            self.mode = mode
            self.kill = kill
            self.resumable = resumable
            self.onKill = onKill
            arrivals = 0
            killedRequest = nil
        }
    }

    /// Ends the run; returns the index of the request held when the binary was killed.
    func disarm() -> Int? {
        lock.withLock {
            mode = .clean
            kill = nil
            onKill = nil
            return killedRequest
        }
    }

    /// How often each kind of reply was given, by `Reply.label`.
    var replyCounts: [String: Int] { lock.withLock { replies } }

    func reply(to request: LoopbackReceiver.Request) -> LoopbackReceiver.Reply {
        let (mode, killNow, resumed) = lock.withLock {
            arrivals += 1
            let killNow = kill.flatMap { $0.atRequest == arrivals ? $0 : nil }
            if killNow != nil { killedRequest = request.index }
            let resumed =
                !request.messages.isEmpty && request.messages.allSatisfy { resumable.contains($0.messageId ?? "") }
            return (self.mode, killNow, resumed)
        }
        let reply: LoopbackReceiver.Reply
        if let killNow {
            reply = killNow.afterHead ? .headThenStall(200) : .stall
            lock.withLock { onKill }?()
        } else {
            switch mode {
            case .clean:
                reply = .ok
            case .outage where !resumed:
                reply = .tooManyRequests(retryAfter: "0")
            case .faults, .outage:
                // A resumed batch is never refused: `diff` assumes pending work gets delivered
                // (SPEC §7), so a refusal there would make its counts differ for a reason of the test's making.
                let drawn = seeded.reply(to: request)
                if resumed, case .status(400, _, _, _) = drawn { reply = .ok } else { reply = drawn }
            }
        }
        lock.withLock { replies[reply.label, default: 0] += 1 }
        return reply
    }
}

/// The scenario: 19 users whose events arrive over simulated weeks, five definitions (three
/// audiences, two computed traits) and two Segment destinations on the receiver (write keys from
/// `env:` and `file:`): ten pairs. Each run ingests new events at a later `--now`, runs
/// `diff --format json` and `--format ndjson`, then `sync --force` at the same `--now` while the
/// receiver injects faults; every third run or so is SIGKILLed when the receiver sees its K-th
/// request. Faults depend only on the seed and each batch's messageIds and attempt, kills on the
/// count of requests, so a seed replays the same scenario. After each run:
///
/// - (a) the snapshot is never ahead of the receiver: every value it holds was acknowledged for
///   that slot, and it equals the last acknowledged one unless the outbox still holds that
///   acknowledged message unrecorded (a kill between the answer and the commit); every outbox row
///   marked delivered was acknowledged;
/// - (b) a messageId always carries the same bytes, in every request and as the outbox holds it;
///   messages held when a run was killed are re-sent, with the same messageId, by a later one;
/// - (c) `diff` changed nothing; for a run that was not killed, its per-pair counts equal the
///   messages the sync wrote (and sent, unless in an outage), its ndjson lists exactly the messages
///   the sync resumed and wrote, and the sync's sent/failed/pending/resumed counts agree with the
///   outbox and the receiver;
/// - (d) every request and message field by field against SPEC §6.1 and §6.2.
///
/// A last run without faults must leave the receiver holding exactly `members` of every
/// definition at every destination: nothing lost.
final class FaultScenario {
    struct Definition {
        var key: String
        var isAudience: Bool
        var yaml: String
    }

    static let definitions = [
        Definition(
            key: "frequent_buyers", isAudience: true,
            yaml: "name: Frequent Buyers\ncondition:\n  performed: Order Completed\n  count: { gte: 2 }\n  within: 3d\n"
        ),
        Definition(key: "pro_users", isAudience: true, yaml: "name: Pro Users\ncondition:\n  trait: plan\n  eq: pro\n"),
        Definition(
            key: "active_readers", isAudience: true,
            yaml: "name: Active Readers\ncondition:\n  performed: Article Read\n  within: 2d\n"),
        Definition(
            key: "spend_3_days", isAudience: false,
            yaml: """
                name: Spend 3 Days
                kind: computed_trait
                compute:
                  op: sum
                  event: Order Completed
                  property: properties.total
                  where: { properties.currency: USD }
                  within: 3d

                """),
        Definition(
            key: "favorite_category", isAudience: false,
            yaml: """
                name: Favorite Category
                kind: computed_trait
                compute:
                  op: most_frequent
                  event: Article Read
                  property: properties.category
                  within: 7d

                """),
    ]

    /// Destination names by request path, and their write keys.
    static let destinations = ["/v1/batch": "segment", "/collector/v1/batch": "collector"]
    static let writeKeys = ["segment": "wk_e2e_segment_5f1", "collector": "wk_e2e_collector_9c3"]
    /// A user id with a quote and a non-ASCII letter goes through every JSON writer and reader.
    static let users = (1...18).map { "u\($0 < 10 ? "0" : "")\($0)" } + ["u_zoë \"q\""]
    static let spaceID = "spa_e2e"
    static let start = Timestamp.parse("2026-11-01T00:00:00Z")!
    /// Retries of each destination; the faults plan never fails a batch's last attempt.
    static let maxRetries = 3

    let seed: UInt64
    let runs: Int
    let binary = Binary("audience-sync")
    let scratch: ScratchDirectory
    /// Where the binary keeps its state (the configuration's `database:`), and the checks read it.
    let store: TestStore
    let control: RunControl
    let receiver: LoopbackReceiver
    private var random: SeededRandom
    private var ledger = Ledger()
    private var now = FaultScenario.start
    private var runNows: Set<Int64> = []
    /// The run being checked, for failure messages.
    private(set) var run = 0
    private var failures = 0
    private var checkedRequests = 0
    /// Each messageId's text as first sent, and how many requests carried it.
    private var firstText: [String: String] = [:]
    private var transmissions: [String: Int] = [:]
    private var computationIds: [String: String] = [:]
    /// messageIds of the requests held when a run was killed.
    private var heldAtKill: Set<String> = []
    private var kills: [String] = []
    private var outages = 0
    private var lagging = 0

    init(seed: UInt64, runs: Int, scratch: ScratchDirectory, store: TestStore) {
        self.seed = seed
        self.runs = runs
        self.scratch = scratch
        self.store = store
        let control = RunControl(seed: seed, maxFaults: Self.maxRetries - 1)
        self.control = control
        receiver = LoopbackReceiver(plan: LoopbackReceiver.Plan { control.reply(to: $0) })
        random = SeededRandom(seed: seed)
    }

    // MARK: The runs

    func run() async throws {
        let started = Date()
        try writeProject()
        for run in 0..<runs {
            self.run = run
            if run > 0 { now += Int64(random.int(in: 4...30)) * 3_600_000 + Int64(random.int(in: 0...3_599_999)) }
            try ingest(count: run == 0 ? 90 : random.int(in: 10...30), since: run == 0 ? now - 5 * 86_400_000 : nil)
            try await syncAndCheck(planRun(run))
            if failures > 0 { return }  // the first failing run is the one to read; the seed replays it
        }
        run = runs
        now += 3_600_000
        try await syncAndCheck((.clean, nil))
        try await finalChecks()
        let seconds = Int(Date().timeIntervalSince(started).rounded())
        let replies = control.replyCounts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
        print(
            """
            sync fault scenario on \(store.kind), seed \(seed): \(runs + 1) runs in \(seconds) s; \(outages) outages; \
            \(kills.count) killed: \(kills.joined(separator: "; ")); \
            \(receiver.requestCount) requests answered \(replies.joined(separator: ", ")); \
            \(ledger.acknowledgements.values.filter { $0 > 1 }.count) messages acknowledged twice; \
            the snapshot lagged the receiver \(lagging) times
            """)
    }

    /// Every third run is killed at one of its first requests, as are some others (so that a kill
    /// can hit the resuming of an earlier killed run); some of the rest are outages.
    private func planRun(_ run: Int) -> (RunControl.Mode, RunControl.Kill?) {
        var kill: RunControl.Kill?
        if run % 3 == 2 || (run % 3 == 0 && run > 0 && random.unit() < 0.3) {
            kill = RunControl.Kill(atRequest: random.int(in: 1...6), afterHead: random.unit() < 0.5)
        }
        return (kill == nil && run % 6 == 4 ? .outage : .faults, kill)
    }

    private func syncAndCheck(_ plan: (mode: RunControl.Mode, kill: RunControl.Kill?)) async throws {
        let nowText = Timestamp.format(now)
        runNows.insert(now)
        let before = try await view()
        let diff = try binary.run(["diff", "--now", nowText, "--format", "json"], in: scratch.path)
        check(diff.status == 0, "diff --format json exited \(diff.status): \(diff.stderr)")
        let ndjson = try binary.run(["diff", "--now", nowText, "--format", "ndjson"], in: scratch.path)
        check(ndjson.status == 0, "diff --format ndjson exited \(ndjson.stderr)")
        check(try await view() == before, "diff changed the store")

        let outcome = try await sync(nowText, plan, resumable: Set(before.pending.map(\.messageId)))
        let after = try await view()
        ledger.update(
            from: receiver, destination: { Self.destinations[$0] ?? "?" },
            isAudience: { key in Self.definitions.first { $0.key == key }?.isAudience ?? true })
        checkRequests(after)
        checkSnapshot(after, strict: plan.mode == .clean && !outcome.killed)
        if outcome.killed {
            check(plan.kill != nil, "the sync died of a signal nobody sent: \(outcome.stderr)")
            kills.append("run \(run): \(plan.kill.map(String.init(describing:)) ?? "?")")
            if let index = outcome.heldRequest {
                heldAtKill.formUnion(receiver.requests[index].messages.compactMap(\.messageId))
            }
        } else {
            if plan.mode == .outage { outages += 1 }
            checkCounts(
                before: before, after: after, diff: diff.stdout, ndjson: ndjson.stdout, outcome, mode: plan.mode)
        }
    }

    private struct Outcome {
        var killed: Bool
        var status: Int32
        var stdout: String
        var stderr: String
        /// The request held when the binary was killed.
        var heldRequest: Int?
        /// The index of the run's first request.
        var firstRequest: Int
    }

    private enum RunEvent: Sendable { case killPoint, exited, timedOut }

    /// Runs `sync --force` at `nowText` with the receiver armed for the run; kills the binary when
    /// the receiver reaches the kill point. Waits on events only, never on a timer (the watchdog
    /// is there so that a hung binary fails the test instead of hanging it).
    private func sync(
        _ nowText: String, _ plan: (mode: RunControl.Mode, kill: RunControl.Kill?), resumable: Set<String>
    )
        async throws -> Outcome
    {
        let (events, continuation) = AsyncStream.makeStream(of: RunEvent.self)
        let firstRequest = receiver.requestCount
        control.arm(plan.mode, kill: plan.kill, resumable: resumable) { continuation.yield(.killPoint) }
        let launched = try Launched(
            binary, ["sync", "--force", "--now", nowText, "--format", "json"], in: scratch.path,
            environment: ["E2E_SEGMENT_WRITE_KEY": Self.writeKeys["segment"]!],
            onExit: { continuation.yield(.exited) })
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(120))
            continuation.yield(.timedOut)
        }
        waiting: for await event in events {
            switch event {
            case .killPoint:
                launched.killNow()
            case .timedOut:
                check(false, "the sync did not finish within 120 s; killing it")
                launched.killNow()
            case .exited:
                break waiting
            }
        }
        watchdog.cancel()
        continuation.finish()
        let held = control.disarm()
        launched.process.waitUntilExit()
        let killed = launched.process.terminationReason == .uncaughtSignal
        return Outcome(
            killed: killed, status: launched.status, stdout: launched.stdout, stderr: launched.stderr,
            heldRequest: killed ? held : nil, firstRequest: firstRequest)
    }

    // MARK: The project

    private func writeProject() throws {
        var configuration = """
            definitions: audiences
            space_id: \(Self.spaceID)
            destinations:

            """
        for (path, name) in Self.destinations.sorted(by: { $0.value > $1.value }) {
            let secret = name == "segment" ? "env:E2E_SEGMENT_WRITE_KEY" : "file:keys/\(name)"
            configuration += """
                  - name: \(name)
                    type: segment
                    write_key: \(secret)
                    endpoint: http://127.0.0.1:\(receiver.port)\(path)
                    timeout: 1
                    max_retries: \(Self.maxRetries)
                    concurrency: 2
                    rate_limit: 1000

                """
        }
        try store.writeConfiguration(configuration, in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.file("audiences"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.file("keys"), withIntermediateDirectories: true)
        try scratch.write("keys/collector", Self.writeKeys["collector"]! + "\n")
        for definition in Self.definitions { try scratch.write("audiences/\(definition.key).yml", definition.yaml) }
    }

    /// Ingests `count` new events with times in (`since` or the last run's now, now].
    private func ingest(count: Int, since: Int64?) throws {
        let earliest = (since ?? runNows.max() ?? now - 3_600_000) + 1
        var lines: [String] = []
        for index in 0..<count {
            let user = Self.users[random.int(in: 0...(Self.users.count - 1))]
            let time = Timestamp.format(earliest + Int64(random.int(in: 0...Int(now - earliest))))
            var message: [JSONValue.Member] = [
                .init("userId", .string(user)), .init("messageId", .string("ev-\(run)-\(index)")),
                .init("timestamp", .string(time)),
            ]
            let kind = random.unit()
            if kind < 0.4 {
                message.append(.init("type", .string("track")))
                message.append(.init("event", .string("Order Completed")))
                let total = JSONValue.number(String(Double(random.int(in: 10...400)) / 2))
                let currency = random.unit() < 0.85 ? "USD" : "EUR"
                message.append(.init("properties", .object(["total": total, "currency": .string(currency)])))
            } else if kind < 0.75 {
                message.append(.init("type", .string("track")))
                message.append(.init("event", .string("Article Read")))
                let category = ["news", "tech", "sports", "travel"][random.int(in: 0...3)]
                message.append(.init("properties", .object(["category": .string(category)])))
            } else {
                message.append(.init("type", .string("identify")))
                let plan = ["free", "pro", "team"][random.int(in: 0...2)]
                message.append(.init("traits", .object(["plan": .string(plan)])))
            }
            lines.append(JSONValue.object(message).jsonString)
        }
        let file = "events-\(run).ndjson"
        try scratch.write(file, lines.joined(separator: "\n") + "\n")
        let result = try binary.run(
            ["ingest", file, "--now", Timestamp.format(now), "--format", "json"], in: scratch.path)
        check(result.status == 0, "ingest exited \(result.status): \(result.stderr)")
        check((try? parseJSON(result.stdout))?["accepted"] as? Int == count, "ingest: \(result.stdout)")
    }

    private func view() async throws -> StoreView { try await StoreView(store) }

    // MARK: Checks

    private func check(
        _ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard !condition else { return }
        failures += 1
        Issue.record(
            Comment(rawValue: "\(store.kind), seed \(seed), run \(run): \(message())"), sourceLocation: sourceLocation)
    }

    /// (b) and (d) for the requests that arrived since the last check.
    private func checkRequests(_ store: StoreView) {
        let rows = Dictionary(store.outbox.map { ($0.messageId, $0) }, uniquingKeysWith: { first, _ in first })
        let requests = receiver.requests
        for request in requests.dropFirst(checkedRequests) {
            guard let destination = Self.destinations[request.uri] else {
                check(false, "a request to \(request.uri)")
                continue
            }
            checkEnvelope(request, destination: destination)
            for message in request.messages {
                checkMessage(message, destination: destination, row: message.messageId.flatMap { rows[$0] })
            }
        }
        checkedRequests = requests.count
    }

    /// SPEC §6.2: POST, Basic auth with the write key, JSON, `{"batch": [...], "sentAt": ...}` within the limits.
    private func checkEnvelope(_ request: LoopbackReceiver.Request, destination: String) {
        let credentials = Data((Self.writeKeys[destination]! + ":").utf8).base64EncodedString()
        check(request.method == "POST", "\(request.method) \(request.uri)")
        check(request.header("Authorization") == "Basic \(credentials)", "the Authorization header of \(destination)")
        check(
            request.header("Content-Type") == "application/json",
            "Content-Type \(request.header("Content-Type") ?? "-")")
        check(request.body.count <= 500_000, "a request of \(request.body.count) bytes")
        let body = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any]
        check(
            Set(body?.keys.map { $0 } ?? []) == ["batch", "sentAt"], "request body fields: \(request.text.prefix(200))")
        let sentAt = body?["sentAt"] as? String ?? ""
        check(Self.milliseconds(sentAt) != nil, "sentAt \(sentAt)")
        let count = (body?["batch"] as? [Any])?.count ?? -1
        check(count == request.messages.count && (1...2_500).contains(count), "a batch of \(count) messages")
    }

    /// Epoch milliseconds of an ISO-8601 UTC time written as `2026-11-22T12:00:00.000Z` (SPEC §6.1's
    /// form), read with Foundation's parser rather than the engine's; nil for any other form.
    static func milliseconds(_ text: String) -> Int64? {
        let characters = Array(text)
        guard characters.count == 24, characters[10] == "T", characters[19] == ".", characters[23] == "Z" else {
            return nil
        }
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return parser.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// SPEC §6.1 field by field, and (b): the bytes are the outbox row's, and the same at every send.
    private func checkMessage(_ message: LoopbackReceiver.Message, destination: String, row: StoreView.OutboxRow?) {
        let id = message.messageId ?? ""
        let context = "message \(id)"
        check(
            (try? JSONSerialization.jsonObject(with: Data(message.text.utf8))) is [String: Any],
            "\(context) is not a JSON object")
        guard let value = try? JSONValue.parse(message.text), case .object(let fields) = value else {
            check(false, "\(context): unparsable: \(message.text)")
            return
        }
        check(
            fields.map(\.key).sorted() == ["context", "messageId", "timestamp", "traits", "type", "userId"],
            "\(context): fields \(fields.map(\.key))")
        check(value["type"] == .string("identify"), "\(context): type \(String(describing: value["type"]))")
        let user = value["userId"]?.stringValue ?? ""
        check(Self.users.contains(user), "\(context): userId \(user)")
        check(!id.isEmpty && id.count <= 100, "\(context): a messageId of \(id.count) characters")
        guard case .object(let traits)? = value["traits"], traits.count == 1, let trait = traits.first,
            let definition = Self.definitions.first(where: { $0.key == trait.key })
        else {
            check(false, "\(context): traits \(String(describing: value["traits"]))")
            return
        }
        switch (definition.isAudience, trait.value) {
        case (true, .bool), (false, .null): break
        case (false, .number) where definition.key == "spend_3_days": break
        case (false, .string) where definition.key == "favorite_category": break
        default: check(false, "\(context): \(trait.key) = \(trait.value.jsonString)")
        }
        let personas = value["context"]?["personas"]
        let computationId = personas?["computation_id"]?.stringValue ?? ""
        let prefix = definition.isAudience ? "aud_" : "trt_"
        check(
            computationId.hasPrefix(prefix) && computationId.count == 28
                && computationId.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase },
            "\(context): computation_id \(computationId)")
        check(
            computationIds[definition.key, default: computationId] == computationId,
            "\(context): computation_id \(computationId) differs from \(computationIds[definition.key] ?? "")")
        computationIds[definition.key] = computationId
        let expectedContext = JSONValue.object([
            "personas": .object([
                "computation_class": .string(definition.isAudience ? "audience" : "trait"),
                "computation_key": .string(definition.key), "computation_id": .string(computationId),
                "space_id": .string(Self.spaceID), "namespace": .string(Self.spaceID),
            ]),
            "library": .object(["name": .string("audience-sync"), "version": .string(AudienceSyncVersion.version)]),
        ])
        check(
            value["context"].map(\.canonicalBytes) == expectedContext.canonicalBytes,
            "\(context): context \(value["context"]?.jsonString ?? "-")")

        // (b): the message is the outbox row's, byte for byte, and every send of it is the same.
        guard let row else {
            check(false, "\(context): no outbox row has this messageId")
            return
        }
        check(message.text == row.message, "\(context): differs from its outbox row: \(message.text) vs \(row.message)")
        check(
            row.slot == Slot(destination: destination, key: trait.key, user: user),
            "\(context): sent for \(row.slot) to \(destination)")
        check(
            canonicalValue(trait.value) == canonicalValue(row.value),
            "\(context): value \(trait.value.jsonString) vs \(row.value)")
        let timestamp = value["timestamp"]?.stringValue ?? "-"
        check(
            Self.milliseconds(timestamp) == row.createdAt && runNows.contains(row.createdAt),
            "\(context): timestamp \(timestamp) is not its run's now")
        check(firstText[id, default: message.text] == message.text, "\(context): re-sent with other bytes")
        firstText[id] = firstText[id] ?? message.text
        transmissions[id, default: 0] += 1
    }

    /// (a): the snapshot never claims a value the receiver has not acknowledged for that slot.
    /// `strict`: it must equal the receiver's last acknowledged value everywhere.
    private func checkSnapshot(_ store: StoreView, strict: Bool) {
        for row in store.outbox where row.state == "delivered" {
            check(
                ledger.acknowledgedIds.contains(row.messageId),
                "\(row.messageId) (\(row.slot)) is marked delivered, never acknowledged")
        }
        for slot in ledger.slots.union(store.snapshot.keys) {
            let held = store.snapshot[slot]
            let acknowledged = ledger.latest(slot)
            if let held {
                check(
                    ledger.everAcknowledged(held, for: slot),
                    "the snapshot holds \(held) for \(slot), never acknowledged")
            }
            guard held != acknowledged else { continue }
            // Behind, never ahead: the receiver acknowledged a message the outbox has not recorded.
            let unrecorded = store.outbox.contains {
                $0.slot == slot && $0.state != "delivered" && ledger.acknowledgedIds.contains($0.messageId)
                    && $0.resultingValue == acknowledged
            }
            check(
                !strict && unrecorded,
                "the snapshot holds \(held ?? "nothing") for \(slot); "
                    + "the receiver last acknowledged \(acknowledged ?? "a removal")")
            if unrecorded { lagging += 1 }
        }
    }

    /// (c) for a run that was not killed.
    private func checkCounts(
        before: StoreView, after: StoreView, diff: String, ndjson: String, _ outcome: Outcome, mode: RunControl.Mode
    ) {
        let written = after.outbox.filter { $0.id > before.lastOutboxId }
        let listed = ndjson.split(separator: "\n").map(String.init)
        let expected = before.pendingInResumeOrder.map(\.message) + written.map(\.message)
        check(
            listed == expected,
            "diff --format ndjson listed \(listed.count) messages; "
                + "the sync resumed \(before.pending.count) and wrote \(written.count)"
                + (zip(listed, expected).first { $0.0 != $0.1 }.map { "; first difference: \($0.0) vs \($0.1)" } ?? ""))

        guard let diffReport = try? JSONValue.parse(diff), case .array(let diffPairs)? = diffReport["pairs"],
            let syncReport = try? JSONValue.parse(outcome.stdout), case .array(let syncPairs)? = syncReport["pairs"]
        else {
            check(
                false,
                "unparsable reports: diff \(diff.prefix(300)); sync \(outcome.stdout.prefix(300)) \(outcome.stderr)")
            return
        }
        check(
            diffPairs.count == Self.definitions.count * Self.destinations.count, "diff lists \(diffPairs.count) pairs")
        let requests = receiver.requests.dropFirst(outcome.firstRequest)
        let resent = Set(requests.flatMap(\.messages).compactMap(\.messageId))
        let refused = Set(requests.filter { $0.status == 400 }.flatMap(\.messages).compactMap(\.messageId))
        var troubled = false
        for pair in diffPairs {
            let key = pair["key"]?.stringValue ?? "?"
            let destination = pair["destination"]?.stringValue ?? "?"
            let name = "\(key) → \(destination)"
            func count(_ report: JSONValue?, _ field: String) -> Int {
                report?[field].flatMap { Int($0.jsonString) } ?? -1
            }
            let rows = written.filter { $0.slot.key == key && $0.slot.destination == destination }
            let resumed = before.pending.filter { $0.slot.key == key && $0.slot.destination == destination }
            let changes = count(pair, "entered") + count(pair, "exited") + count(pair, "changed")
            check(changes == rows.count, "\(name): diff counted \(changes) changes; the sync wrote \(rows.count)")
            check(count(pair, "exited") == rows.filter(\.removes).count, "\(name): exits")
            check(count(pair, "invalid") == 0 && count(pair, "pending") == resumed.count, "\(name): invalid or pending")
            let synced = syncPairs.first {
                $0["key"]?.stringValue == key && $0["destination"]?.stringValue == destination
            }
            check(synced?["first_sync"] == pair["first_sync"], "\(name): first_sync differs")
            if pair["first_sync"] == .bool(true) {
                check(!rows.contains(where: \.removes), "\(name): a removal in a first sync")
            }
            check(
                count(synced, "resumed") == resumed.count,
                "\(name): resumed \(count(synced, "resumed")) of \(resumed.count)")
            let states = Dictionary(grouping: rows, by: \.state).mapValues(\.count)
            check(
                count(synced, "sent") == states["delivered", default: 0]
                    && count(synced, "failed") == states["failed", default: 0]
                    && count(synced, "pending") == states["pending", default: 0],
                "\(name): sync reported \(synced?.jsonString ?? "nothing"); the outbox has \(states)")
            check(rows.allSatisfy { $0.createdAt == now }, "\(name): a message not stamped with the run's now")
            // The resumed messages went out again (unchanged: `checkMessage`) and were delivered.
            for row in resumed {
                let delivered = after.outbox.first { $0.id == row.id }?.state == "delivered"
                check(
                    delivered && resent.contains(row.messageId), "\(name): resumed \(row.messageId) was not delivered")
            }
            for row in rows where row.state == "failed" {
                check(
                    refused.contains(row.messageId), "\(name): \(row.messageId) failed, the receiver never refused it")
            }
            switch mode {
            case .outage:
                check(rows.allSatisfy { $0.state == "pending" }, "\(name): an outage delivered \(states)")
            case .faults, .clean:
                check(!rows.contains { $0.state == "pending" }, "\(name): a batch did not get through its retries")
            }
            if rows.contains(where: { $0.state != "delivered" }) { troubled = true }
        }
        check(outcome.status == (troubled ? 1 : 0), "sync exited \(outcome.status): \(outcome.stderr)")
    }

    /// Nothing lost: after a clean run, the receiver holds exactly the current state of every
    /// definition at every destination, and there is nothing left to send.
    private func finalChecks() async throws {
        let store = try await view()
        check(store.pending.isEmpty, "\(store.pending.count) messages still pending")
        for id in heldAtKill {
            check((transmissions[id] ?? 0) >= 2, "\(id), held when a run was killed, was not sent again")
            // A delivered row of a run more than a week (of `now`) old is pruned: then the receiver
            // must have acknowledged it.
            let row = store.outbox.first { $0.messageId == id }
            check(
                row?.state == "delivered" || (row == nil && ledger.acknowledgedIds.contains(id)),
                "\(id) was never delivered")
        }
        let nowText = Timestamp.format(now)
        for definition in Self.definitions {
            let result = try binary.run(
                ["members", definition.key, "--now", nowText, "--format", "json"], in: scratch.path)
            check(result.status == 0, "members \(definition.key): \(result.stderr)")
            let report = try JSONValue.parse(result.stdout)
            var current: [String: String] = [:]
            if definition.isAudience, case .array(let members)? = report["members"] {
                for member in members { current[member.stringValue ?? "?"] = "true" }
            } else if case .object(let values)? = report["values"] {
                for value in values { current[value.key] = canonicalValue(value.value) }
            }
            for destination in Self.destinations.values {
                var held: [String: String] = [:]
                for user in Self.users {
                    held[user] = ledger.latest(Slot(destination: destination, key: definition.key, user: user))
                }
                check(
                    held == current,
                    "\(definition.key) → \(destination): the receiver holds \(held), members says \(current)")
            }
        }
        let diff = try JSONValue.parse(
            try binary.run(["diff", "--now", nowText, "--format", "json"], in: scratch.path).stdout)
        if case .array(let pairs)? = diff["pairs"] {
            for pair in pairs {
                let left = ["entered", "exited", "changed", "pending"].map { pair[$0]?.jsonString ?? "?" }
                check(left == ["0", "0", "0", "0"], "after the last sync, diff still has \(pair.jsonString)")
            }
        }
    }
}
