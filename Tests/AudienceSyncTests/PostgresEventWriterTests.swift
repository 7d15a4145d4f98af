import Foundation
import PostgresNIO
import Testing

@testable import AudienceSync

/// The PostgreSQL writer's two paths (`PostgresEventWriter`): new messages are copied straight into
/// `events` after a check of their ids; a chunk that a concurrent writer got in first is staged and
/// moved with `ON CONFLICT DO NOTHING`. What every store does is in `StoreContractTests`.
@Suite struct PostgresEventWriterTests {
    typealias Contract = StoreContractTests

    /// Runs `body` with the PostgreSQL writer of a new store; nil when there is no server.
    static func withWriter<T>(
        _ options: EventWriterOptions = EventWriterOptions(),
        _ body: (PostgresStore, PostgresEventWriter, TemporaryDirectory) async throws -> T
    ) async throws -> T? {
        let directory = try TemporaryDirectory()
        return try await TestPostgres.withStore { store in
            try await store.withEventWriter(options) { writer in
                try await body(store, try #require(writer as? PostgresEventWriter), directory)
            }
        }
    }

    /// `(message_id, user_id, source)` of every stored event, in the order they were stored.
    static func stored(_ store: PostgresStore) async throws -> [[String?]] {
        try await store.rows(
            CompiledQuery(sql: "SELECT message_id, user_id, source FROM events ORDER BY seq", binds: [])
        ).map { row in row.map(\.string) }
    }

    /// Writes one batch of tracks with `ids` and commits.
    static func commit(_ ids: [String], _ writer: PostgresEventWriter, _ directory: TemporaryDirectory) async throws
        -> EventWriteCounts
    {
        let counts = try await writer.write(try Contract.stage(ids.map { Contract.track($0) }, in: directory)[0])
        try await writer.commit()
        return counts
    }

    /// Ids stored already are skipped by the check, and the chunk is still copied directly. After a
    /// check that found nothing, the writer copies unchecked: a stored id then fails the copy, the
    /// chunk is staged, and the writer checks again.
    @Test func idsStoredAlreadyAreDuplicatesOfADirectCopy() async throws {
        try await Self.withWriter { store, writer, directory async throws in
            #expect(try await Self.commit(["m1", "m2"], writer, directory) == EventWriteCounts(accepted: 2))
            // Unchecked: the copy fails on m1 and the chunk is staged.
            #expect(
                try await Self.commit(["m0", "m1", "m3", "m2", "m4"], writer, directory)
                    == EventWriteCounts(accepted: 3, duplicates: 2))
            #expect(await writer.chunksCopiedDirectly == 1)
            #expect(await writer.chunksStaged == 1)
            // Checked: m5 is copied, m1 skipped.
            #expect(
                try await Self.commit(["m5", "m1"], writer, directory) == EventWriteCounts(accepted: 1, duplicates: 1))
            // Checked again (the last check found a stored id): nothing new, nothing copied.
            #expect(
                try await Self.commit(["m3", "m1"], writer, directory) == EventWriteCounts(accepted: 0, duplicates: 2))
            #expect(try await Self.commit(["m6"], writer, directory) == EventWriteCounts(accepted: 1))
            #expect(await writer.chunksCopiedDirectly == 4)
            #expect(await writer.chunksStaged == 1)
            #expect(try await Self.stored(store).map { $0[0] } == ["m1", "m2", "m0", "m3", "m4", "m5", "m6"])
        }
    }

    /// The first copy of a messageId in a batch is the one stored, also across the batches of one
    /// transaction (the check sees what the transaction wrote).
    @Test func theFirstCopyWinsWithinABatchAndATransaction() async throws {
        try await Self.withWriter(EventWriterOptions(transactionSize: nil)) { store, writer, directory async throws in
            let batch = try Contract.stage(
                [
                    Contract.track("a", user: "u1"), Contract.track("b", user: "u1"),
                    Contract.track("a", user: "u2"), Contract.track("c", user: nil, anonymous: "x1"),
                    Contract.track("b", user: "u2"),
                ], in: directory)[0]
            #expect(try await writer.write(batch) == EventWriteCounts(accepted: 3, duplicates: 2, anonymous: 1))
            // Same users, so that the identity numbers of the second staging agree with the first.
            let next = try Contract.stage(
                [
                    Contract.track("c", user: "u1"), Contract.track("d", user: "u1"),
                    Contract.track("a", user: "u2"),
                ], in: directory)[0]
            // Copied unchecked (the first check found nothing), failed on c, staged.
            #expect(try await writer.write(next) == EventWriteCounts(accepted: 1, duplicates: 2))
            #expect(await writer.chunksStaged == 1)
            // Checked: the check sees d, which this transaction stored.
            let last = try Contract.stage(
                [Contract.track("e", user: "u1"), Contract.track("d", user: "u1")], in: directory)[0]
            #expect(try await writer.write(last) == EventWriteCounts(accepted: 1, duplicates: 1))
            try await writer.commit()
            #expect(await writer.chunksCopiedDirectly == 2)
            #expect(await writer.chunksStaged == 1)
            #expect(
                try await Self.stored(store) == [
                    ["a", "u1", nil], ["b", "u1", nil], ["c", nil, nil], ["d", "u1", nil], ["e", "u1", nil],
                ])
            #expect(try await store.users(now: ingestNow) == ["u1"])
        }
    }

    /// A concurrent writer stores one of the ids between the check and the copy: the copy fails, its
    /// savepoint is rolled back, the chunk is staged, and the transaction goes on.
    @Test func aConcurrentWriterBetweenTheCheckAndTheCopySendsTheChunkToStaging() async throws {
        try await Self.withWriter { store, writer, directory async throws in
            let other = try Contract.stage([Contract.track("m2", user: "other")], in: directory)
            await writer.setBeforeDirectCopy {
                try await store.withEventWriter(EventWriterOptions()) { concurrent in
                    #expect(try await concurrent.write(other[0]) == EventWriteCounts(accepted: 1))
                    try await concurrent.commit()
                }
            }
            let lines = [Contract.track("m1"), Contract.track("m2"), Contract.track("m3"), Contract.track("m1")]
            #expect(
                try await writer.write(try Contract.stage(lines, in: directory)[0])
                    == EventWriteCounts(accepted: 2, duplicates: 2))
            #expect(await writer.chunksStaged == 1)
            #expect(await writer.chunksCopiedDirectly == 0)
            await writer.setBeforeDirectCopy(nil)
            // The transaction is whole: the next batch is copied directly and everything commits.
            #expect(try await writer.write(try Contract.stage([Contract.track("m4")], in: directory)[0]).accepted == 1)
            try await writer.commit()
            #expect(await writer.chunksCopiedDirectly == 1)
            #expect(
                try await Self.stored(store) == [
                    ["m2", "other", nil],
                    ["m1", "u1", nil], ["m3", "u1", nil], ["m4", "u1", nil],
                ])
            #expect(try await store.users(now: ingestNow) == ["other", "u1"])
            // Arrivals count each stored message once, whichever writer stored it.
            let arrivals = try await store.rows(
                CompiledQuery(sql: "SELECT sum(count)::bigint FROM event_counts", binds: []))
            #expect(arrivals.first?.first?.int64 == 4)
        }
    }

    /// After a fallback the writer's transaction still rolls back whole: nothing of it survives,
    /// and the concurrent writer's message stays.
    @Test func aRollbackAfterAFallbackForgetsTheWholeTransaction() async throws {
        try await Self.withWriter { store, writer, directory async throws in
            _ = try await writer.write(try Contract.stage([Contract.track("m0")], in: directory)[0])
            let other = try Contract.stage([Contract.track("m2", user: "other")], in: directory)
            await writer.setBeforeDirectCopy {
                try await store.withEventWriter(EventWriterOptions()) { concurrent in
                    _ = try await concurrent.write(other[0])
                    try await concurrent.commit()
                }
            }
            _ = try await writer.write(
                try Contract.stage([Contract.track("m1"), Contract.track("m2")], in: directory)[0])
            #expect(await writer.chunksStaged == 1)
            await writer.rollback()
            #expect(try await Self.stored(store).map { $0[0] } == ["m2"])
            #expect(try await store.users(now: ingestNow) == ["other"])
        }
    }

    /// A transaction takes at most `directCopiesPerTransaction` savepoints (PostgreSQL caches 64
    /// subtransactions per transaction); later chunks are staged, and the count starts over at commit.
    @Test func aTransactionTakesABoundedNumberOfSavepoints() async throws {
        try await Self.withWriter(EventWriterOptions(transactionSize: nil)) { store, writer, directory async throws in
            let limit = PostgresEventWriter.directCopiesPerTransaction
            let batches = try (0..<(limit + 3)).map { try Contract.stage([Contract.track("m\($0)")], in: directory)[0] }
            for batch in batches { #expect(try await writer.write(batch).accepted == 1) }
            #expect(await writer.chunksCopiedDirectly == limit)
            #expect(await writer.chunksStaged == 3)
            try await writer.commit()
            #expect(
                try await writer.write(try Contract.stage([Contract.track("next")], in: directory)[0]).accepted == 1)
            #expect(await writer.chunksCopiedDirectly == limit + 1)
            try await writer.commit()
            #expect(try await store.eventCount() == limit + 4)
        }
    }
}
