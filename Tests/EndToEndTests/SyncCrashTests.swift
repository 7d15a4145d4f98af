#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AudienceSync
import Foundation
import Testing

/// A real crash: the built binary is killed with SIGKILL while its delivery blocks on a named pipe
/// nobody reads, then a second sync finishes the work (SPEC §6 guarantees). With the state in
/// SQLite and in PostgreSQL.
///
/// Every wait is a bounded number of short polls that fails the test when it runs out, so the
/// test cannot hang whatever the binary does.
@Suite struct SyncCrashTests {
    static let now = "2026-11-22T12:00:00Z"
    let binary = Binary("audience-sync")

    /// The demo with two file destinations: `outbox` (a regular file) and `slow`, listed after it,
    /// so that each definition delivers to `outbox` first. The definitions without a
    /// `destinations:` list go to both; nps_detractors goes to sprig and outbox; the syncs select the two file destinations.
    func project(_ scratch: ScratchDirectory, _ store: TestStore) throws {
        try scratch.copyDemo()
        try store.writeConfiguration(
            """
            definitions: audiences
            schedule: 2h
            space_id: spa_demo
            destinations:
              - name: outbox
                type: file
                path: out/identify.ndjson
              - name: slow
                type: file
                path: out/slow.ndjson
              - name: sprig
                type: sprig
                api_key: env:SPRIG_API_KEY
            """, in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.file("out"), withIntermediateDirectories: true)
        let ingest = try binary.run(["ingest", "events.ndjson", "--now", Self.now], in: scratch.path)
        #expect(ingest.status == 1, "\(ingest.stderr)")  // the demo has 5 bad lines on purpose
    }

    @Test(arguments: StoreKind.allCases)
    func aSyncKilledWhileDeliveryBlocksLosesNothingAndResendsTheSameMessageIds(_ kind: StoreKind) async throws {
        let scratch = try ScratchDirectory()
        try await TestStore.with(kind, in: scratch) { (store: TestStore) async throws -> Void in
            try await killedWhileDeliveryBlocks(scratch, store)
        }
    }

    func killedWhileDeliveryBlocks(_ scratch: ScratchDirectory, _ store: TestStore) async throws {
        try project(scratch, store)
        // What the first sync must deliver, per destination, as "user key=value".
        var expected: [String: Set<String>] = [:]
        for destination in ["outbox", "slow"] {
            let diff = try binary.run(
                ["diff", "--now", Self.now, "--format", "ndjson", "--destination", destination], in: scratch.path)
            #expect(diff.status == 0, "\(diff.stderr)")
            expected[destination] = Set(try lines(diff.stdout).map(change))
        }
        #expect(expected["outbox"]?.count == 25 && expected["slow"]?.count == 22)

        #expect(mkfifo(scratch.file("out/slow.ndjson"), 0o600) == 0)
        let files = ["--destination", "outbox", "--destination", "slow"]  // sprig would need its secret
        let first = try Launched(binary, ["sync", "--now", Self.now] + files, in: scratch.path)
        defer { first.killNow() }

        // Wait until the outbox holds pending messages for the blocked destination.
        var pendingIds: [String] = []
        let found = await poll { () async -> Bool in
            guard first.isRunning else { return true }
            pendingIds =
                (try? await store.strings(
                    "SELECT message_id FROM outbox_states WHERE destination = 'slow' AND state = 'pending' ORDER BY id"))
                ?? []
            return !pendingIds.isEmpty
        }
        #expect(found && first.isRunning, "the sync exited or never got blocked: \(first.stderr)")
        try #require(!pendingIds.isEmpty)
        // The first definition got through to outbox before slow blocked: mid-way through the run.
        let deliveredBefore = try await store.strings("SELECT message_id FROM outbox_states WHERE state = 'delivered'")
        #expect(!deliveredBefore.isEmpty)

        // Meanwhile a second sync exits 3 at once.
        let concurrent = try Launched(binary, ["sync", "--now", Self.now] + files, in: scratch.path)
        defer { concurrent.killNow() }
        #expect(await poll { !concurrent.isRunning }, "the second sync did not exit")
        #expect(concurrent.status == 3)
        #expect(concurrent.stderr.contains("another sync holds the lock"))

        first.killNow()
        #expect(await poll { !first.isRunning }, "the killed sync did not exit")
        #expect(first.process.terminationReason == .uncaughtSignal)

        // The destination comes back as a regular file; the next sync finishes the work.
        try FileManager.default.removeItem(atPath: scratch.file("out/slow.ndjson"))
        let second = try Launched(binary, ["sync", "--now", Self.now, "--format", "json"] + files, in: scratch.path)
        defer { second.killNow() }
        #expect(await poll { !second.isRunning }, "the second sync did not finish")
        #expect(second.status == 0, "\(second.stderr)")

        var acknowledged: [String: [String: [String: String]]] = [:]  // destination → key → user → value
        for (destination, file) in [("outbox", "out/identify.ndjson"), ("slow", "out/slow.ndjson")] {
            let messages = try lines(try String(contentsOfFile: scratch.file(file), encoding: .utf8))
            // Every expected change arrived at least once.
            let arrived = Set(messages.map(change))
            #expect(expected[destination, default: []].isSubset(of: arrived), "\(destination)")
            // A change is never sent under two messageIds.
            var idsByChange: [String: Set<String>] = [:]
            for message in messages { idsByChange[change(message), default: []].insert(messageId(message)) }
            #expect(idsByChange.values.allSatisfy { $0.count == 1 }, "\(destination)")
            if destination == "slow" {
                // The messages the killed run decided on were sent with its messageIds, first.
                #expect(Array(messages.prefix(pendingIds.count).map(messageId)) == pendingIds)
            }
            for message in messages {
                guard case .object(let traits)? = message["traits"], let trait = traits.first,
                    let user = message["userId"]?.stringValue
                else { continue }
                let removes = trait.value == .bool(false) || trait.value == .null
                acknowledged[destination, default: [:]][trait.key, default: [:]][user] =
                    removes ? nil : trait.value.jsonString
            }
        }

        #expect(acknowledged["slow"]?.values.map(\.count).reduce(0, +) == 22)
        #expect(acknowledged["outbox"]?.values.map(\.count).reduce(0, +) == 25)
        // The snapshot is exactly what was acknowledged.
        let snapshotRows = try await store.rows("SELECT destination, key, user_id, value FROM snapshots")
        var snapshot: [String: [String: [String: String]]] = [:]
        for row in snapshotRows {
            let text = row.map { (value: SQLValue) -> String in value.string ?? "" }
            snapshot[text[0], default: [:]][text[1], default: [:]][text[2]] = text[3]
        }
        #expect(snapshot == acknowledged)

        // diff at the same time has nothing left to send; status agrees with the snapshot.
        let diff = try binary.run(["diff", "--now", Self.now, "--format", "json"], in: scratch.path)
        let pairs = try #require(try parseJSON(diff.stdout)["pairs"] as? [[String: Any]])
        for pair in pairs where pair["destination"] as? String != "sprig" {
            let left = ["entered", "exited", "changed", "pending", "invalid"].map { pair[$0] as? Int ?? -1 }
            #expect(left == [0, 0, 0, 0, 0], "\(pair)")
        }
        let status = try binary.run(["status", "--now", Self.now, "--format", "json"], in: scratch.path)
        let statusPairs = try #require(try parseJSON(status.stdout)["pairs"] as? [[String: Any]])
        for pair in statusPairs where pair["destination"] as? String != "sprig" {
            let key = pair["key"] as? String ?? "", destination = pair["destination"] as? String ?? ""
            #expect(pair["synced"] as? Int == acknowledged[destination]?[key]?.count ?? 0, "\(key) → \(destination)")
            #expect(pair["pending"] as? Int == 0 && pair["last_outcome"] as? String == "ok", "\(pair)")
        }
    }

    /// The demo after a sync, with nps_detractors deleted: status warns, retire removes the users.
    @Test(arguments: StoreKind.allCases) func retireThroughTheBinary(_ kind: StoreKind) async throws {
        let scratch = try ScratchDirectory()
        try await TestStore.with(kind, in: scratch) { (store: TestStore) async throws -> Void in
            try await retire(scratch, store)
        }
    }

    func retire(_ scratch: ScratchDirectory, _ store: TestStore) async throws {
        try project(scratch, store)
        let sync = try binary.run(["sync", "--now", Self.now, "--destination", "outbox"], in: scratch.path)
        #expect(sync.status == 0, "\(sync.stderr)")
        let refused = try binary.run(["retire", "nps_detractors"], in: scratch.path)
        #expect(refused.status == 2 && refused.stderr.contains("still an enabled definition"))

        try FileManager.default.removeItem(atPath: scratch.file("audiences/nps_detractors.yml"))
        let status = try binary.run(["status", "--now", Self.now], in: scratch.path)
        #expect(status.stdout.contains("run 'audience-sync retire nps_detractors'"))
        let retire = try binary.run(
            ["retire", "nps_detractors", "--now", "2026-11-22T13:00:00Z", "--format", "json"], in: scratch.path)
        #expect(retire.status == 0, "\(retire.stderr)")
        let report = try parseJSON(retire.stdout)
        #expect(report["key"] as? String == "nps_detractors")
        let destinations = try #require(report["destinations"] as? [[String: Any]])
        #expect(destinations.count == 1)
        #expect(destinations.first?["destination"] as? String == "outbox")
        #expect(destinations.first?["sent"] as? Int == 3 && destinations.first?["pending"] as? Int == 0)
        let sent = try lines(try String(contentsOfFile: scratch.file("out/identify.ndjson"), encoding: .utf8))
        #expect(sent.suffix(3).map(change) == ["u_ben nps_detractors=false", "u_dev nps_detractors=false", "u_hana nps_detractors=false"])
        let after = try binary.run(["status", "--now", Self.now, "--format", "json"], in: scratch.path)
        #expect((try parseJSON(after.stdout)["orphaned"] as? [Any])?.isEmpty == true)

        try await store.withSyncLock {
            let locked = try binary.run(["retire", "total_spent_90_days", "--force"], in: scratch.path)
            #expect(locked.status == 3)
        }
    }

    // MARK: Helpers

    func lines(_ text: String) throws -> [JSONValue] {
        try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    /// `user key=value` of an identify message.
    func change(_ message: JSONValue) -> String {
        guard case .object(let traits)? = message["traits"], let trait = traits.first else { return "?" }
        return "\(message["userId"]?.stringValue ?? "?") \(trait.key)=\(trait.value.jsonString)"
    }

    func messageId(_ message: JSONValue) -> String { message["messageId"]?.stringValue ?? "?" }

    /// Calls `done` up to 1,500 times, 20 ms apart (30 s at most), until it returns true.
    func poll(_ done: () async -> Bool) async -> Bool {
        for _ in 0..<1_500 {
            if await done() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
