import Foundation
import Testing

@testable import AudienceSync

/// The differ's merge join against a dictionary-based model of SPEC §6 step 4, on random current
/// states, snapshots and pending outbox work, with user ids whose byte order differs from Swift's
/// string order.
@Suite struct PairDiffTests {
    /// User ids chosen to trip an ordering that is not SQLite's byte order: upper before lower case,
    /// a precomposed "é" and a decomposed one (equal for Swift's `==`, different bytes), characters
    /// beyond the BMP, prefixes of one another, and ids longer than the differ's first buffer
    /// (64 bytes), one a prefix of another, two differing in their last byte only.
    static let userIds: [String] = [
        "A", "B", "Z", "a", "aa", "ab", "b", "u_1", "u_10", "u_2", "\u{E9}", "e\u{301}", "z", "\u{1F600}",
        "\u{FFFD}", "~", "ä", "\u{7F}x", "u 1", "U_1", String(repeating: "a", count: 70),
        String(repeating: "a", count: 70) + "b", String(repeating: "\u{E9}", count: 40) + "1",
        String(repeating: "\u{E9}", count: 40) + "0",
    ]

    /// A computed value longer than the differ's first buffer (the snapshots also hold one that
    /// differs from it in its last byte only).
    static let longPlan = String(repeating: "p", count: 90)

    static let definitions = [
        "did_thing.yml": """
        name: Did Thing
        condition:
          performed: Thing
        destinations: [outbox]
        """,
        "last_plan.yml": """
        name: Last Plan
        kind: computed_trait
        compute:
          op: last
          event: Thing
          property: properties.plan
        destinations: [outbox]
        """,
    ]

    /// A user id as its bytes: Swift's `String ==` (and so a `[String: …]` dictionary) takes
    /// canonically equivalent ids for one, SQLite does not.
    typealias UserBytes = [UInt8]

    /// A change, compared byte for byte.
    struct Change: Equatable, CustomStringConvertible {
        var user: UserBytes
        var kind: PairChange.Kind
        var value: UserBytes
        var removes: Bool

        init(_ change: PairChange) {
            self.init(Array(change.userId.utf8), change.kind, change.value, change.removes)
        }

        init(_ user: UserBytes, _ kind: PairChange.Kind, _ value: String, _ removes: Bool) {
            self.user = user
            self.kind = kind
            self.value = Array(value.utf8)
            self.removes = removes
        }

        var description: String { "\(user) \(kind) \(String(decoding: value, as: UTF8.self)) \(removes)" }
    }

    /// The model: the snapshot with pending work applied, diffed against the current state.
    static func expected(
        current: [UserBytes: String], snapshot: [UserBytes: String], pending: [(UserBytes, String, Bool)], gone: String
    ) -> (counts: PairCounts, changes: [Change]) {
        var base = snapshot
        for (user, value, removes) in pending { base[user] = removes ? nil : value }
        var counts = PairCounts()
        counts.members = current.count
        counts.synced = snapshot.count
        counts.pending = pending.count
        var changes: [Change] = []
        for (user, value) in current {
            if let old = base[user] {
                if Array(old.utf8) == Array(value.utf8) {
                    counts.unchanged += 1
                } else {
                    counts.changed += 1
                    changes.append(Change(user, .changed, value, false))
                }
            } else {
                counts.entered += 1
                changes.append(Change(user, .entered, value, false))
            }
        }
        for user in base.keys where current[user] == nil {
            counts.exited += 1
            changes.append(Change(user, .exited, gone, true))
        }
        changes.sort { $0.user.lexicographicallyPrecedes($1.user) }
        return (counts, changes)
    }

    @Test(arguments: 0..<40)
    func theMergeJoinEqualsTheModel(seed: Int) async throws {
        var random = SplitMix64(seed: UInt64(seed) &+ 7)
        let folder = try TemporaryDirectory()
        for (name, text) in Self.definitions { _ = try folder.write(name, text) }
        // SQLite only: the merge join is the SQLite store's (`SQLitePairDiff`), run on its connection.
        try await SyncHarness.with(.sqlite, definitions: folder.path) { (harness: SyncHarness) async throws in
            // Current state: each chosen user did Thing with a plan of p0…p2 (the last one counts).
            var lines: [String] = []
            var currentPlan: [UserBytes: String] = [:]
            for (index, user) in Self.userIds.enumerated() where random.next() % 3 != 0 {
                let plan = ["p0", "p1", "p2", Self.longPlan][Int(random.next() % 4)]
                currentPlan[Array(user.utf8)] = "\"\(plan)\""
                let userJSON = JSONValue.string(user).jsonString
                lines.append(
                    #"{"type":"track","userId":\#(userJSON),"event":"Thing","properties":{"plan":"\#(plan)"},"#
                        + #""messageId":"m-\#(index)","timestamp":"2026-11-20T10:00:00Z"}"#)
            }
            let events = try harness.directory.write("events.ndjson", lines.joined(separator: "\n") + "\n")
            try await harness.ingest(events)

            try await harness.execute(
                "INSERT INTO runs (id, started_at, key, destination, first_sync) VALUES (1, 0, 'x', 'outbox', 0)")
            let pairs = try SyncSelection().pairs(
                definitions: harness.engine.definitions, configuration: harness.configuration)
            var messageNumber = 0
            for pair in pairs {
                let audience = pair.definition.kind == .audience
                let current = audience ? currentPlan.mapValues { _ in "true" } : currentPlan
                let values =
                    audience
                    ? ["true"]
                    : [
                        "\"p0\"", "\"p1\"", "\"p2\"", "null", "\"p\\u0030\"", "\"\(Self.longPlan)\"",
                        "\"\(Self.longPlan.dropLast())q\"",
                    ]
                var snapshot: [UserBytes: String] = [:]
                for user in Self.userIds where random.next() % 2 == 0 {
                    snapshot[Array(user.utf8)] = values[Int(random.next() % UInt64(values.count))]
                }
                var pending: [(UserBytes, String, Bool)] = []
                for _ in 0..<Int(random.next() % 6) {
                    let user = Self.userIds[Int(random.next() % UInt64(Self.userIds.count))]
                    let removes = random.next() % 3 == 0
                    let value =
                        removes ? (audience ? "false" : "null") : values[Int(random.next() % UInt64(values.count))]
                    pending.append((Array(user.utf8), value, removes))
                }
                let snapshotRows = snapshot.map { (String(decoding: $0.key, as: UTF8.self), $0.value) }
                var pendingRows: [(user: String, value: String, removes: Bool, messageId: String)] = []
                for (user, value, removes) in pending {
                    messageNumber += 1
                    pendingRows.append((String(decoding: user, as: UTF8.self), value, removes, "m\(messageNumber)"))
                }
                messageNumber += 1
                let extraNumber = messageNumber
                let key = pair.key
                let pendingToWrite = pendingRows
                try await harness.database { database in
                    for (user, value) in snapshotRows {
                        try database.prepare(
                            "INSERT INTO snapshots (key, destination, user_id, value) VALUES (?1, 'outbox', ?2, ?3)"
                        )
                        .execute([.text(key), .text(user), .text(value)])
                    }
                    for row in pendingToWrite {
                        try database.prepare(
                            """
                            INSERT INTO outbox (run_id, key, destination, user_id, value, removes, message_id, created_at, updated_at)
                            VALUES (1, ?1, 'outbox', ?2, ?3, ?4, ?5, 0, 0)
                            """
                        ).execute([
                            .text(key), .text(row.user), .text(row.value), .integer(row.removes ? 1 : 0),
                            .text(row.messageId),
                        ])
                    }
                    // A delivered row and another pair's pending row must not count.
                    try database.prepare(
                        """
                        INSERT INTO outbox (run_id, key, destination, user_id, value, removes, message_id, state, created_at, updated_at)
                        VALUES (1, ?1, 'outbox', 'A', 'true', 0, ?2, 'delivered', 0, 0),
                               (1, ?1, 'elsewhere', 'B', 'true', 0, ?3, 'pending', 0, 0)
                        """
                    ).execute([.text(key), .text("m\(extraNumber)"), .text("n\(extraNumber)")])
                }

                let model = Self.expected(
                    current: current, snapshot: snapshot, pending: pending, gone: audience ? "false" : "null")
                let request = DiffRequest(
                    pair: PairName(key: pair.key, destination: "outbox"), kind: pair.definition.kind,
                    members: try harness.engine.statement(key: pair.key, now: demoNow), sampleSize: 2)
                let nested = seed % 2 == 1
                let (diff, changes, inTransactionDuring, inTransactionAfter) = try await harness.database {
                    (database: Database) throws -> (PairDiff, [Change], Bool, Bool) in
                    let differ = SQLitePairDiff(database: database)
                    var during = true
                    let diff: PairDiff
                    if nested {
                        // In a caller's transaction the diff's savepoint nests and leaves that transaction open.
                        diff = try database.inTransaction(.deferred) {
                            let diff = try differ.stage(request)
                            during = database.isInTransaction
                            return diff
                        }
                    } else {
                        diff = try differ.stage(request)
                    }
                    return (
                        diff, try differ.changes(from: 0, limit: Int.max).map(Change.init), during,
                        database.isInTransaction
                    )
                }
                let counts = diff.counts
                #expect(inTransactionDuring)
                #expect(!inTransactionAfter, "the diff's savepoint is released")
                #expect(counts == model.counts, "seed \(seed), \(pair.key)")
                #expect(changes == model.changes, "seed \(seed), \(pair.key)")
                let sample = diff.sample
                for kind in [PairChange.Kind.entered, .exited, .changed] {
                    let expected = model.changes.filter { $0.kind == kind }.prefix(2).map(\.user)
                    #expect(sample[kind]?.map { Array($0.utf8) } == Array(expected))
                }
            }
        }
    }
}
