import AudienceSync
import Foundation
import LoopbackReceiver
import NIOConcurrencyHelpers
import SharedTestSupport
import Testing

/// The PostgreSQL store's connection failures, with the built binary (SPEC §12): a connection lost
/// in the middle of delivery leaves the outbox to finish on the next run, as a crash does; a
/// server that refuses connections is exit 1 with a message that names host and database.
@Suite struct SyncConnectionLossTests {
    static let now = "2026-11-22T12:00:00Z"
    static let writeKey = "wk_e2e_connection_loss"
    let binary = Binary("audience-sync")

    /// The demo, its events ingested, with its Segment destination on `receiver` (the syncs select
    /// `segment`); a held request waits for the test, not for the client's timeout.
    func project(_ scratch: ScratchDirectory, _ store: TestStore, receiver: LoopbackReceiver) throws {
        try scratch.copyDemo()
        try store.configureDemo(in: scratch)
        let configuration = try String(contentsOfFile: scratch.file("audience-sync.yml"), encoding: .utf8)
        let key = "    write_key: env:SEGMENT_WRITE_KEY\n"
        #expect(configuration.contains(key))
        try scratch.write(
            "audience-sync.yml",
            configuration.replacingOccurrences(
                of: key, with: key + "    endpoint: http://127.0.0.1:\(receiver.port)/v1/batch\n    timeout: 120\n"))
        let ingest = try binary.run(["ingest", "events.ndjson", "--now", Self.now], in: scratch.path)
        #expect(ingest.status == 1, "\(ingest.stderr)")  // the demo has 5 bad lines on purpose
    }

    /// What the test waits for while the first sync runs.
    enum RunEvent: Sendable {
        case held(Int)
        case exited, timedOut
    }

    /// The sync's connections are terminated by the server (`pg_terminate_backend`) while the
    /// receiver holds its second batch unanswered; then that batch is acknowledged. The sync must
    /// stop with exit 1 and a message naming the server, having recorded nothing the receiver did
    /// not acknowledge; the next sync sends what was left, with the same messageIds, so that the
    /// receiver ends with every change once (per messageId) and the snapshots equal the members.
    @Test func aConnectionLostDuringDeliveryIsFinishedByTheNextRun() async throws {
        let scratch = try ScratchDirectory()
        try await TestStore.with(.postgres, in: scratch) { (store: TestStore) async throws -> Void in
            let (events, continuation) = AsyncStream.makeStream(of: RunEvent.self)
            let arrivals = NIOLockedValueBox(0)
            let plan = LoopbackReceiver.Plan { (request: LoopbackReceiver.Request) -> LoopbackReceiver.Reply in
                let arrival = arrivals.withLockedValue { (count: inout Int) -> Int in
                    count += 1
                    return count
                }
                guard arrival == 2 else { return .ok }
                continuation.yield(.held(request.index))
                return .stall
            }
            try await LoopbackReceiver.with(plan: plan) { (receiver: LoopbackReceiver) async throws -> Void in
                try project(scratch, store, receiver: receiver)
                try await loseTheConnection(scratch, store, receiver, events: events, continuation: continuation)
            }
        }
    }

    func loseTheConnection(
        _ scratch: ScratchDirectory, _ store: TestStore, _ receiver: LoopbackReceiver,
        events: AsyncStream<RunEvent>, continuation: AsyncStream<RunEvent>.Continuation
    ) async throws {
        let selection = ["--now", Self.now, "--destination", "segment"]
        let diff = try binary.run(["diff", "--format", "ndjson"] + selection, in: scratch.path)
        #expect(diff.status == 0, "\(diff.stderr)")
        let expected = Set(
            try diff.stdout.split(separator: "\n").map { (line: Substring) throws -> String in
                change(try JSONValue.parse(String(line)))
            })
        #expect(expected.count > 10)

        // Only this sync's connections carry this name (`$PGAPPNAME`): the test's own, and other
        // tests' on the same server, are left alone.
        let application = "audience-sync-e2e-\(UUID().uuidString.prefix(8).lowercased())"
        let secrets = ["SEGMENT_WRITE_KEY": Self.writeKey]
        let first = try Launched(
            binary, ["sync", "--format", "json"] + selection, in: scratch.path,
            environment: secrets.merging(["PGAPPNAME": application]) { (_: String, new: String) -> String in new },
            onExit: { continuation.yield(.exited) })
        defer { first.killNow() }
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(120))
            continuation.yield(.timedOut)
        }
        defer { watchdog.cancel() }

        var heldRequest: Int?
        var terminated = 0
        waiting: for await event in events {
            switch event {
            case .held(let index):
                heldRequest = index
                // One batch was acknowledged before this one arrived: delivery is under way.
                #expect(receiver.acknowledgedRequests.count == 1)
                // Waits (up to 10 s) until each backend has exited, and the sync lock with it. The
                // connections are chosen first: the server refuses to terminate others' backends.
                let killed = try await store.strings(
                    """
                    WITH sync AS MATERIALIZED (
                        SELECT pid FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1)
                    SELECT count(*) FROM sync WHERE pg_terminate_backend(pid, 10000)
                    """, [.text(application)])
                terminated = Int(killed.first ?? "") ?? 0
                // The receiver now acknowledges the held batch: the sync must not record it.
                #expect(receiver.releaseStalled(with: .ok) == 1)
            case .exited:
                break waiting
            case .timedOut:
                Issue.record("the sync did not finish within 120 s: \(first.stderr)")
                first.killNow()
            }
        }
        first.process.waitUntilExit()
        #expect(heldRequest != nil, "the receiver never held a batch: \(first.stderr)")
        // At least the lock's connection (the pool closes idle ones of its own after a while); the
        // message below says the sync saw its lock lost.
        #expect(terminated >= 1, "terminated \(terminated) backends")
        #expect(first.process.terminationReason == .exit && first.status == 1, "exit \(first.status): \(first.stderr)")
        guard case .postgres(let location) = store.location else { return }
        // It names the server and says the lock's connection was lost: the sync stopped there.
        let server = "\(location.host):\(location.port)/\(location.database)"
        #expect(first.stderr.contains(server) && first.stderr.contains("lock was lost"), "\(first.stderr)")
        // It stopped at its first write after the loss: the held batch is not recorded, and no
        // batch was sent after it.
        #expect(receiver.requestCount == 2, "\(receiver.requestCount) requests")
        let password = ProcessInfo.processInfo.environment[PostgresTestServer.passwordVariable] ?? ""
        #expect(password.isEmpty || !first.stderr.contains(password))
        print("the sync whose connections were terminated exited \(first.status): \(first.stderr)")

        // Nothing the receiver did not acknowledge is recorded as delivered or in a snapshot, and
        // nothing it acknowledged is lost: each such message is delivered or still pending.
        let acknowledged = receiver.acknowledgedMessages
        let acknowledgedIds = Set(acknowledged.compactMap(\.messageId))
        let afterLoss = try await StoreView(store)
        for row in afterLoss.outbox where row.state == "delivered" {
            #expect(acknowledgedIds.contains(row.messageId), "\(row.messageId) marked delivered, never acknowledged")
        }
        let rows = Dictionary(afterLoss.outbox.map { ($0.messageId, $0) }) { (first: StoreView.OutboxRow, _) in first }
        for id in acknowledgedIds {
            #expect(
                ["delivered", "pending"].contains(rows[id]?.state),
                "\(id), acknowledged, is \(rows[id]?.state ?? "gone")")
        }
        var everAcknowledged: [Slot: Set<String>] = [:]
        for message in acknowledged {
            guard let (slot, value) = try slotValue(message) else { continue }
            everAcknowledged[slot, default: []].insert(value ?? "removed")
        }
        for (slot, value) in afterLoss.snapshot {
            #expect(
                everAcknowledged[slot]?.contains(value) == true,
                "the snapshot holds \(value) for \(slot), never acknowledged")
        }

        // The next run finishes the work.
        let second = try binary.run(["sync", "--format", "json"] + selection, in: scratch.path, environment: secrets)
        #expect(second.status == 0, "\(second.stderr)")

        // Every change arrived, under one messageId; a messageId acknowledged twice is one of the
        // batch the first run could not record, sent again as it was.
        let messages = receiver.acknowledgedMessages
        var idsByChange: [String: Set<String>] = [:]
        var acknowledgements: [String: Int] = [:]
        var texts: [String: Set<String>] = [:]
        for message in messages {
            let id = message.messageId ?? "?"
            idsByChange[change(try JSONValue.parse(message.text)), default: []].insert(id)
            acknowledgements[id, default: 0] += 1
            texts[id, default: []].insert(message.text)
        }
        #expect(Set(idsByChange.keys) == expected)
        #expect(idsByChange.values.allSatisfy { $0.count == 1 }, "\(idsByChange.filter { $0.value.count > 1 })")
        #expect(texts.values.allSatisfy { $0.count == 1 }, "a message re-sent with other bytes")
        let heldIds = Set(heldRequest.map { receiver.requests[$0].messages.compactMap(\.messageId) } ?? [])
        for (id, count) in acknowledgements where count > 1 {
            #expect(count == 2 && heldIds.contains(id), "\(id) acknowledged \(count) times")
        }
        #expect(
            !heldIds.isEmpty && heldIds.allSatisfy { acknowledgements[$0] == 2 }, "the held batch was not sent again")

        // The snapshots are what the receiver holds, and nothing is left to send.
        let final = try await StoreView(store)
        #expect(final.pending.isEmpty)
        var held: [Slot: String] = [:]
        for message in messages {
            guard let (slot, value) = try slotValue(message) else { continue }
            held[slot] = value
        }
        let snapshot = final.snapshot.filter { $0.key.destination == "segment" }
        #expect(snapshot == held)
        let after = try binary.run(["diff", "--now", Self.now, "--format", "json"], in: scratch.path)
        let pairs = try #require(try parseJSON(after.stdout)["pairs"] as? [[String: Any]])
        for pair in pairs where pair["destination"] as? String == "segment" {
            let left = ["entered", "exited", "changed", "pending", "invalid"].map { pair[$0] as? Int ?? -1 }
            #expect(left == [0, 0, 0, 0, 0], "\(pair)")
        }
    }

    /// A server that refuses connections: exit 1 at once, naming host and database, never the password.
    @Test func aRefusedConnectionIsExit1NamingTheServer() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        // A port held, never listening, for the whole test: nothing else can take it meanwhile.
        let refusing = try RefusingPort()
        let port = refusing.port
        defer { withExtendedLifetime(refusing) {} }
        #expect(connectionRefused(port: port))
        let text = try String(contentsOfFile: scratch.file("audience-sync.yml"), encoding: .utf8)
        let database =
            "database: postgres://someone@127.0.0.1:\(port)/analytics?connect_timeout=30\n"
            + "database_password: env:E2E_REFUSED_PASSWORD"
        try scratch.write(
            "audience-sync.yml",
            text.split(separator: "\n", omittingEmptySubsequences: false).map { (line: Substring) -> String in
                line.hasPrefix("database:") ? database : String(line)
            }.joined(separator: "\n"))
        let password = "hunter2-e2e-refused"
        let started = ContinuousClock.now
        let result = try binary.run(
            ["sync", "--now", Self.now, "--destination", "outbox"], in: scratch.path,
            environment: ["E2E_REFUSED_PASSWORD": password])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("PostgreSQL at 127.0.0.1:\(port), database analytics"), "\(result.stderr)")
        #expect(result.stderr.contains("cannot connect"), "\(result.stderr)")
        #expect(!result.stderr.contains(password) && !result.stdout.contains(password))
        // Refused at once: not retried until the connect timeout.
        #expect(ContinuousClock.now - started < .seconds(20), "\(result.stderr)")
    }

    /// The slot a message is for, and the canonical value acknowledging it leaves there (nil: a removal).
    func slotValue(_ message: LoopbackReceiver.Message) throws -> (Slot, String?)? {
        let value = try JSONValue.parse(message.text)
        guard case .object(let traits)? = value["traits"], let trait = traits.first,
            let user = value["userId"]?.stringValue
        else { return nil }
        let removes = trait.value == .bool(false) || trait.value == .null
        return (Slot(destination: "segment", key: trait.key, user: user), removes ? nil : canonicalValue(trait.value))
    }

    /// `user key=value` of an identify message.
    func change(_ message: JSONValue) -> String {
        guard case .object(let traits)? = message["traits"], let trait = traits.first else { return "?" }
        return "\(message["userId"]?.stringValue ?? "?") \(trait.key)=\(trait.value.jsonString)"
    }
}
