import Foundation
import Testing

@testable import AudienceSync

/// The stores the contract tests run on: every store the program has (each test gets a new, empty one).
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    var description: String { rawValue }

    /// The stores that keep the sync state: all of them.
    static let keepingSyncState: [StoreKind] = [.sqlite, .postgres]

    /// Runs `body` with a new, empty store of this kind, open for writing; nil when the kind is
    /// not available here (PostgreSQL without a server: see `TestPostgres`).
    @discardableResult
    func withStore<T>(_ body: (any Store, TemporaryDirectory) async throws -> T) async throws -> T? {
        let directory = try TemporaryDirectory()
        switch self {
        case .sqlite:
            return try await body(try await SQLiteStore(path: directory.file("audiences.db")), directory)
        case .postgres:
            return try await TestPostgres.withStore { (store: PostgresStore) async throws -> T in
                try await body(store, directory)
            }
        }
    }

    /// Runs `body` with the same store opened again for reading only.
    func withReadOnly<T>(_ store: any Store, _ body: (any Store) async throws -> T) async throws -> T {
        switch self {
        case .sqlite:
            guard let store = store as? SQLiteStore else { throw AudienceSyncError(.usage, "not an SQLite store") }
            return try await body(try await SQLiteStore(path: store.path, access: .readOnly))
        case .postgres:
            guard let store = store as? PostgresStore else { throw AudienceSyncError(.usage, "not a PostgreSQL store") }
            return try await PostgresStore.withStore(store.target, access: .readOnly) { (reader: PostgresStore) async throws -> T in
                try await body(reader)
            }
        }
    }
}

/// What every store must do behind the seam (`Store`): the event sink, the membership source, the
/// sync state and the lock, checked through the roles only, so that another store runs the same suite.
@Suite struct StoreContractTests {
    static let day: Int64 = 86_400_000

    /// Staged batches of NDJSON `lines`, as an ingest stages them (identity numbers included).
    static func stage(_ lines: [String], in directory: TemporaryDirectory, batchLimit: Int = .max) throws -> [StagedBatch] {
        let path = try directory.write("input-\(UUID().uuidString).ndjson", lines.joined(separator: "\n") + "\n")
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        var reader = LineReader(descriptor: descriptor)
        defer { reader.deallocate() }
        var stager = LineStager(
            validator: MessageValidator(ingestTime: ingestNow), strict: false, identities: IdentityNumbers())
        var batches: [StagedBatch] = []
        while let batch = stager.nextBatch(from: &reader, file: "input") { batches.append(batch) }
        #expect(batches.allSatisfy { $0.rejected.isEmpty })
        return batches
    }

    static func track(_ id: String, user: String? = "u1", anonymous: String? = nil, day: Int = 1, event: String = "E")
        -> String
    {
        var fields = [#""type":"track""#, #""event":"\#(event)""#, #""messageId":"\#(id)""#]
        if let user { fields.append(#""userId":"\#(user)""#) }
        if let anonymous { fields.append(#""anonymousId":"\#(anonymous)""#) }
        fields.append(#""timestamp":"\#(Timestamp.format(ingestNow - Int64(30 - day) * Self.day))""#)
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func write(_ batches: [StagedBatch], to store: any Store, commit: Bool = true) async throws -> EventWriteCounts {
        try await store.withEventWriter(EventWriterOptions()) { writer in
            var total = EventWriteCounts()
            for batch in batches {
                let counts = try await writer.write(batch)
                total.accepted += counts.accepted
                total.duplicates += counts.duplicates
                total.anonymous += counts.anonymous
            }
            if commit { try await writer.commit() }
            return total
        }
    }

    // MARK: Event sink

    @Test(arguments: StoreKind.allCases)
    func theSinkStoresNewMessagesAndCountsDuplicates(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            let first = try Self.stage(
                [Self.track("m1"), Self.track("m1", user: "u2"), Self.track("m2", user: nil, anonymous: "a1")], in: directory)
            #expect(try await Self.write(first, to: store) == EventWriteCounts(accepted: 2, duplicates: 1, anonymous: 1))
            let again = try Self.stage([Self.track("m2", user: nil, anonymous: "a1"), Self.track("m3")], in: directory)
            #expect(try await Self.write(again, to: store) == EventWriteCounts(accepted: 1, duplicates: 1, anonymous: 0))
            #expect(try await store.eventCount() == 3)
            #expect(try await store.users(now: ingestNow) == ["u1"])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func whatIsNotCommittedIsForgotten(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(try Self.stage([Self.track("kept")], in: directory), to: store)
            // Rolled back explicitly, then forgotten when the writer ends without a commit.
            try await store.withEventWriter(EventWriterOptions(transactionSize: nil)) { writer in
                _ = try await writer.write(try Self.stage([Self.track("r1", user: "u9")], in: directory)[0])
                await writer.rollback()
                _ = try await writer.write(try Self.stage([Self.track("r2", user: "u9")], in: directory)[0])
            }
            // And when the body throws.
            await #expect(throws: AudienceSyncError.self) {
                try await store.withEventWriter(EventWriterOptions(transactionSize: nil)) { writer in
                    _ = try await writer.write(try Self.stage([Self.track("r3", user: "u9")], in: directory)[0])
                    throw AudienceSyncError(.input, "stop")
                }
            }
            #expect(try await store.eventCount() == 1)
            #expect(try await store.users(now: ingestNow) == ["u1"])
            // A message forgotten is new the next time.
            #expect(try await Self.write(try Self.stage([Self.track("r1", user: "u9")], in: directory), to: store).accepted == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func theWriterCommitsOnItsOwnEveryTransactionSize(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            let lines = (0..<25).map { Self.track("m\($0)", user: "u\($0 % 4)") }
            await #expect(throws: AudienceSyncError.self) {
                try await store.withEventWriter(EventWriterOptions(transactionSize: 10)) { writer in
                    for batch in try Self.stage(lines, in: directory) { _ = try await writer.write(batch) }
                    throw AudienceSyncError(.input, "stop before the last commit")
                }
            }
            #expect(try await store.eventCount() == 20)
            #expect(try await store.users(now: ingestNow) == ["u0", "u1", "u2", "u3"])
        }
    }

    /// Users and links keep their earliest time whatever the order of writing (SPEC §3.2).
    @Test(arguments: StoreKind.allCases)
    func identitiesKeepTheirEarliestTime(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(
                try Self.stage([Self.track("late", user: "u1", anonymous: "a1", day: 20)], in: directory), to: store)
            _ = try await Self.write(
                try Self.stage(
                    [
                        Self.track("early", user: "u2", anonymous: "a1", day: 10),
                        Self.track("anon", user: nil, anonymous: "a1", day: 5),
                    ], in: directory), to: store)
            let day15 = ingestNow - 15 * Self.day
            #expect(try await store.linkedUser(anonymousId: "a1", now: day15) == "u2")
            #expect(try await store.linkedUser(anonymousId: "a1", now: ingestNow - 25 * Self.day) == nil)
            #expect(try await store.users(now: day15) == ["u2"])
            #expect(try await store.unlinkedAnonymousEventCount(now: ingestNow - 22 * Self.day) == 1)
            #expect(try await store.unlinkedAnonymousEventCount(now: day15) == 0)
        }
    }

    // MARK: Membership source

    @Test(arguments: StoreKind.allCases)
    func statementsRunWithTheirBindsAndKeepTheirOrder(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            let ids = ["é", "e\u{301}", "Z", "a", "u10", "u9", "😀"]
            _ = try await Self.write(
                try Self.stage(ids.enumerated().map { Self.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            let dialect = store.dialect
            let members = try await store.memberIDs(
                CompiledQuery(
                    sql: "SELECT user_id AS uid FROM users WHERE first_seen <= \(dialect.placeholder(1)) ORDER BY \(dialect.byteOrdered("user_id"))",
                    binds: [.integer(ingestNow)]))
            #expect(members == ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            let values = try await store.memberValues(
                CompiledQuery(
                    sql: "SELECT user_id AS uid, \(dialect.placeholder(1)) AS value FROM users ORDER BY \(dialect.byteOrdered("user_id"))",
                    binds: [.text("42")]))
            #expect(values.map(\.userId) == members && values.allSatisfy { $0.value == "42" })
            let row = try await store.rows(
                CompiledQuery(
                    sql: "SELECT \(dialect.placeholder(1)), \(dialect.placeholder(2)), \(dialect.placeholder(3))",
                    binds: [.integer(-7), .text("x'y"), .real(2.5)]))
            #expect(row == [[.integer(-7), .text("x'y"), .real(2.5)]])
        }
    }

    // MARK: Sync state

    /// The statement of an audience of every known user, for the diff.
    static func everyone(_ store: any Store) -> CompiledQuery {
        CompiledQuery(
            sql: "SELECT user_id AS uid FROM users ORDER BY \(store.dialect.byteOrdered("user_id"))", binds: [])
    }

    static let pair = PairName(key: "everyone", destination: "outbox")
    static let destination = DestinationConfiguration(name: "outbox", kind: .file, path: "out.ndjson")

    static func maker(now: Int64) -> OutboxMessageMaker {
        OutboxMessageMaker(key: pair.key, kind: .audience, destination: destination, spaceID: "spa", now: now)
    }

    /// Diffs `everyone` and writes its run; returns the run id.
    static func syncRun(_ store: any Store, now: Int64, firstSync: Bool) async throws -> (PairDiff, Int64) {
        let diff = try await store.stageDiff(
            DiffRequest(pair: pair, kind: .audience, members: everyone(store), sampleSize: 10))
        let run = try await store.writeRun(
            OutboxRun(pair: pair, startedAt: now, firstSync: firstSync, changes: .stagedDiff, messages: maker(now: now)))
        return (diff, try #require(run).runId)
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func anOutboxRunIsDeliveredMarkedAndApplied(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(
                try Self.stage(["u1", "u2", "u3"].enumerated().map { Self.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            #expect(try await store.pairRecord(Self.pair) == PairRecord(lastSyncedAt: nil, isFirstSync: true))
            let firstRunId = try await store.nextRunId()
            let (diff, runId) = try await Self.syncRun(store, now: ingestNow, firstSync: true)
            #expect(runId == firstRunId)
            #expect(diff.counts.entered == 3 && diff.counts.members == 3 && diff.counts.synced == 0)
            #expect(diff.sample[.entered] == ["u1", "u2", "u3"])
            #expect(try await store.stagedChanges(from: 1, limit: 10).map(\.userId) == ["u2", "u3"])
            #expect(try await store.pendingPairs() == [Self.pair])
            let pending = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            // Exactly the messages the one maker makes, with the run's messageIds.
            let expected = try ["u1", "u2", "u3"].map {
                try Self.maker(now: ingestNow).message(userId: $0, value: "true", runId: runId)
            }
            #expect(pending.map(\.body) == expected.map(\.body))
            #expect(pending.map(\.messageId) == expected.map(\.messageId))
            // A count that does not match changes nothing.
            await #expect(throws: AudienceSyncError.self) {
                try await store.acknowledge(Self.pair, after: 0, through: pending[2].id, count: 2)
            }
            #expect(try await store.pendingCount(Self.pair) == 3)
            try await store.acknowledge(Self.pair, after: 0, through: pending[1].id, count: 2)
            #expect(try await store.pendingMessages(Self.pair, after: 0, limit: 10).map(\.userId) == ["u3"])
            try await store.record([MessageOutcome(id: pending[2].id, result: .failed(reason: "no"))], at: ingestNow)
            #expect(try await store.pendingCount(Self.pair) == 0)
            try await store.finishRun(runId, durationMilliseconds: 5)
            #expect(try await store.lastRun(Self.pair) == RunSummary(outcome: "partial", failed: 1))
            #expect(try await store.pairRecord(Self.pair) == PairRecord(lastSyncedAt: ingestNow, isFirstSync: false))
            #expect(try await store.snapshotSizes() == [PairSize(pair: Self.pair, count: 2)])
            #expect(try await store.unfinishedRuns(Self.pair).isEmpty)
            // The refused user is diffed again; the others are unchanged.
            let (again, secondRunId) = try await Self.syncRun(store, now: ingestNow + Self.day, firstSync: false)
            #expect(again.counts.entered == 1 && again.counts.unchanged == 2 && again.sample[.entered] == ["u3"])
            #expect(secondRunId > runId)
        }
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func pendingWorkIsInTheDiffAndARemovalRunEmptiesTheSnapshot(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(
                try Self.stage(["u1", "u2"].enumerated().map { Self.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            let (_, runId) = try await Self.syncRun(store, now: ingestNow, firstSync: true)
            // Undelivered, the run's work is what the snapshot will be: a second diff sends nothing new.
            let (pendingDiff, _) = try await Self.syncRun(store, now: ingestNow + 1, firstSync: true)
            #expect(pendingDiff.counts.pending == 2 && pendingDiff.counts.entered == 0 && pendingDiff.counts.unchanged == 2)
            let pending = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            try await store.acknowledge(Self.pair, after: 0, through: pending[1].id, count: 2)
            try await store.finishRun(runId, durationMilliseconds: nil)
            #expect(try await store.destinationsHoldingState(key: Self.pair.key) == ["outbox"])
            #expect(try await !store.snapshotHoldsValuesOtherThanTrue(key: Self.pair.key))
            #expect(try await !store.dropPairIfRetired(Self.pair))

            let removals = try #require(
                try await store.writeRun(
                    OutboxRun(
                        pair: Self.pair, startedAt: ingestNow + Self.day, firstSync: false,
                        changes: .removals(value: "false"), messages: Self.maker(now: ingestNow + Self.day))))
            let messages = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            #expect(messages.map(\.userId) == ["u1", "u2"])
            #expect(messages.allSatisfy { $0.body.contains(#""everyone":false"#) })
            #expect(try await store.lastMessage(key: Self.pair.key) == messages.last?.body)
            try await store.acknowledge(Self.pair, after: pending[1].id, through: messages[1].id, count: 2)
            try await store.finishRun(removals.runId, durationMilliseconds: nil)
            #expect(try await store.snapshotSizes().isEmpty)
            #expect(try await store.dropPairIfRetired(Self.pair))
            #expect(try await store.pairRecord(Self.pair).isFirstSync)
            // Nothing to remove: no run.
            #expect(
                try await store.writeRun(
                    OutboxRun(
                        pair: Self.pair, startedAt: ingestNow + 2 * Self.day, firstSync: false,
                        changes: .removals(value: "false"), messages: Self.maker(now: ingestNow + 2 * Self.day))) == nil)
        }
    }

    /// Pruning never lets a message written after it read as delivered.
    @Test(arguments: StoreKind.keepingSyncState)
    func pruningKeepsTheNewestRowSoMarksNeverCoverNewWork(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(try Self.stage([Self.track("m1", user: "u1")], in: directory), to: store)
            let (_, runId) = try await Self.syncRun(store, now: ingestNow, firstSync: true)
            let first = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            try await store.acknowledge(Self.pair, after: 0, through: first[0].id, count: 1)
            try await store.finishRun(runId, durationMilliseconds: nil)
            try await store.pruneDeliveredMessages(startedBefore: ingestNow + 8 * Self.day)
            _ = try await Self.write(try Self.stage([Self.track("m2", user: "u2")], in: directory), to: store)
            _ = try await Self.syncRun(store, now: ingestNow + 8 * Self.day, firstSync: false)
            let next = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            #expect(next.map(\.userId) == ["u2"])
            #expect(next[0].id > first[0].id)
        }
    }

    /// A store open for reading only diffs without writing anything.
    @Test(arguments: StoreKind.keepingSyncState)
    func aReadOnlyStoreDiffs(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(try Self.stage([Self.track("m1", user: "u1")], in: directory), to: store)
            try await kind.withReadOnly(store) { (reader: any Store) async throws in
                let diff = try await reader.stageDiff(
                    DiffRequest(pair: Self.pair, kind: .audience, members: Self.everyone(reader), sampleSize: 1))
                #expect(diff.counts.entered == 1)
                await #expect(throws: AudienceSyncError.self) {
                    _ = try await Self.write(try Self.stage([Self.track("m2")], in: directory), to: reader)
                }
                await #expect(throws: AudienceSyncError.self) {
                    _ = try await reader.writeRun(
                        OutboxRun(
                            pair: Self.pair, startedAt: ingestNow, firstSync: true, changes: .stagedDiff,
                            messages: Self.maker(now: ingestNow)))
                }
            }
            #expect(try await store.pendingCount(Self.pair) == 0)
        }
    }

    /// The statement of an audience of the known users but `excluded`.
    static func everyoneBut(_ excluded: String, _ store: any Store) -> CompiledQuery {
        let dialect = store.dialect
        return CompiledQuery(
            sql: "SELECT user_id AS uid FROM users WHERE user_id <> \(dialect.placeholder(1)) ORDER BY \(dialect.byteOrdered("user_id"))",
            binds: [.text(excluded)])
    }

    /// The statement of a computed trait with these values (user id → JSON text) for known users.
    static func values(_ values: [(String, String)], _ store: any Store) -> CompiledQuery {
        let dialect = store.dialect
        var binds: [SQLValue] = []
        let rows = values.map { user, value -> String in
            binds += [.text(user), .text(value)]
            return "SELECT \(dialect.placeholder(binds.count - 1)) AS uid, \(dialect.placeholder(binds.count)) AS value"
        }
        return CompiledQuery(
            sql: "SELECT uid, value FROM (\(rows.joined(separator: " UNION ALL ")))\(dialect.derivedTableAlias("v")) ORDER BY \(dialect.byteOrdered("uid"))",
            binds: binds)
    }

    static let traitPair = PairName(key: "plan_value", destination: "outbox")

    static func traitMaker(now: Int64) -> OutboxMessageMaker {
        OutboxMessageMaker(key: traitPair.key, kind: .computedTrait, destination: destination, spaceID: "spa", now: now)
    }

    /// Diffs the computed trait `values` and writes its run; returns the diff and the run's pending messages.
    static func traitRun(_ store: any Store, _ values: [(String, String)], now: Int64) async throws
        -> (PairDiff, WrittenRun, [OutboundMessage])
    {
        let diff = try await store.stageDiff(
            DiffRequest(pair: traitPair, kind: .computedTrait, members: Self.values(values, store), sampleSize: 10))
        let run = try #require(
            try await store.writeRun(
                OutboxRun(
                    pair: traitPair, startedAt: now, firstSync: false, changes: .stagedDiff, messages: traitMaker(now: now))))
        return (diff, run, try await store.pendingMessages(traitPair, after: 0, limit: 100))
    }

    /// A computed trait's diff: new values enter, changed ones change, gone ones are sent as null;
    /// the values are the messages' traits, as the maker writes them.
    @Test(arguments: StoreKind.keepingSyncState)
    func aComputedTraitSendsNewChangedAndGoneValues(kind: StoreKind) async throws {
        try await kind.withStore { store, _ async throws in
            let (first, _, sent) = try await Self.traitRun(store, [("u1", "1"), ("u2", #""pro""#)], now: ingestNow)
            #expect(first.counts.entered == 2 && first.counts.members == 2)
            try await store.acknowledge(Self.traitPair, after: 0, through: try #require(sent.last).id, count: 2)
            #expect(try await store.snapshotHoldsValuesOtherThanTrue(key: Self.traitPair.key))

            let (diff, run, messages) = try await Self.traitRun(
                store, [("u2", #""max""#), ("u3", #"{"a":[1,2.5]}"#)], now: ingestNow + Self.day)
            #expect(diff.counts == PairCounts(members: 2, synced: 2, entered: 1, exited: 1, changed: 1, unchanged: 0, pending: 0))
            #expect(diff.sample[.exited] == ["u1"] && diff.sample[.changed] == ["u2"] && diff.sample[.entered] == ["u3"])
            let changes = try await store.stagedChanges(from: 0, limit: 10)
            #expect(changes.map(\.value) == ["null", #""max""#, #"{"a":[1,2.5]}"#])
            #expect(changes.map(\.removes) == [true, false, false])
            let expected = try changes.map {
                try Self.traitMaker(now: ingestNow + Self.day).message(userId: $0.userId, value: $0.value, runId: run.runId)
            }
            #expect(messages.map(\.body) == expected.map(\.body))
            #expect(messages.map(\.messageId) == expected.map(\.messageId))
            try await store.acknowledge(Self.traitPair, after: sent[1].id, through: messages[2].id, count: 3)
            #expect(try await store.snapshotSizes() == [PairSize(pair: Self.traitPair, count: 2)])
            // Nothing changed since: nothing to send.
            let (again, _, _) = try await Self.traitRun(
                store, [("u2", #""max""#), ("u3", #"{"a":[1,2.5]}"#)], now: ingestNow + 2 * Self.day)
            #expect(again.counts.changes == 0 && again.counts.unchanged == 2 && again.counts.synced == 2)
        }
    }

    /// A message that can never be sent (over 32 KB) is written as failed, returned, never
    /// delivered nor applied: the next diff has it again.
    @Test(arguments: StoreKind.keepingSyncState)
    func aMessageThatCannotBeSentIsWrittenAsFailedAndStaysOutOfTheSnapshot(kind: StoreKind) async throws {
        try await kind.withStore { store, _ async throws in
            let huge = "\"" + String(repeating: "x", count: 40_000) + "\""
            let (_, run, pending) = try await Self.traitRun(store, [("u1", "1"), ("u2", huge)], now: ingestNow)
            #expect(run.invalid.map(\.userId) == ["u2"])
            #expect(pending.map(\.userId) == ["u1"])
            try await store.acknowledge(Self.traitPair, after: 0, through: pending[0].id, count: 1)
            try await store.finishRun(run.runId, durationMilliseconds: nil)
            #expect(try await store.lastRun(Self.traitPair) == RunSummary(outcome: "partial", failed: 1))
            #expect(try await store.snapshotSizes() == [PairSize(pair: Self.traitPair, count: 1)])
            let again = try await store.stageDiff(
                DiffRequest(
                    pair: Self.traitPair, kind: .computedTrait, members: Self.values([("u1", "1"), ("u2", huge)], store),
                    sampleSize: 10))
            #expect(again.counts.entered == 1 && again.sample[.entered] == ["u2"] && again.counts.unchanged == 1)
        }
    }

    /// Messages not yet acknowledged are read back, by another connection too, with the bytes and
    /// messageIds they were written with: a resend is the same messages.
    @Test(arguments: StoreKind.keepingSyncState)
    func aResendIsTheSameMessagesWithTheSameMessageIds(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(
                try Self.stage(["u1", "u2", "u3"].enumerated().map { Self.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            _ = try await Self.syncRun(store, now: ingestNow, firstSync: true)
            let written = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            // The first batch acknowledged, the second lost on its way (nothing recorded).
            try await store.acknowledge(Self.pair, after: 0, through: written[0].id, count: 1)
            let resent = try await kind.withReadOnly(store) { (reader: any Store) async throws in
                try await reader.pendingMessages(Self.pair, after: 0, limit: 10)
            }
            #expect(resent == Array(written.dropFirst()))
            #expect(try await store.pendingPairs() == [Self.pair])
            // A later diff lays the pending work over the snapshot: nothing new to send.
            let (diff, _) = try await Self.syncRun(store, now: ingestNow + 1, firstSync: false)
            #expect(diff.counts.pending == 2 && diff.counts.synced == 1 && diff.counts.changes == 0)
        }
    }

    /// Messages recorded one by one are applied in their order: the last of a user is in force.
    @Test(arguments: StoreKind.keepingSyncState)
    func recordedMessagesApplyInOrder(kind: StoreKind) async throws {
        try await kind.withStore { store, directory async throws in
            _ = try await Self.write(
                try Self.stage(["u1", "u2"].enumerated().map { Self.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            _ = try await Self.syncRun(store, now: ingestNow, firstSync: true)
            // u1 leaves before its entry is delivered: its exit is queued behind it.
            let diff = try await store.stageDiff(
                DiffRequest(pair: Self.pair, kind: .audience, members: Self.everyoneBut("u1", store), sampleSize: 10))
            #expect(diff.counts.exited == 1 && diff.counts.unchanged == 1 && diff.counts.pending == 2)
            _ = try await store.writeRun(
                OutboxRun(
                    pair: Self.pair, startedAt: ingestNow + 1, firstSync: false, changes: .stagedDiff,
                    messages: Self.maker(now: ingestNow + 1)))
            let pending = try await store.pendingMessages(Self.pair, after: 0, limit: 10)
            #expect(pending.map(\.userId) == ["u1", "u2", "u1"])
            try await store.record(pending.map { MessageOutcome(id: $0.id, result: .acknowledged) }, at: ingestNow + 2)
            #expect(try await store.pendingCount(Self.pair) == 0)
            #expect(try await store.snapshotSizes() == [PairSize(pair: Self.pair, count: 1)])
            let after = try await store.stageDiff(
                DiffRequest(pair: Self.pair, kind: .audience, members: Self.everyoneBut("u1", store), sampleSize: 10))
            #expect(after.counts.changes == 0 && after.counts.synced == 1)
        }
    }

    // MARK: Lock

    @Test(arguments: StoreKind.allCases)
    func oneSyncLockHolderAtATime(kind: StoreKind) async throws {
        try await kind.withStore { store, _ async throws in
            try await store.withSyncLock {
                let error = await #expect(throws: AudienceSyncError.self) {
                    try await store.withSyncLock {}
                }
                #expect(error?.code == .locked)
            }
            // Free again once released.
            try await store.withSyncLock {}
        }
    }
}
