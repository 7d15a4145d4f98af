import Foundation
import PostgresNIO
import Testing

@testable import AudienceSync

/// What only a PostgreSQL store can show about its sync state and lock: a read-only diff leaves no
/// trace in the schema, and the advisory lock keeps two clients (two hosts) apart. The contract
/// itself is `StoreContractTests`.
@Suite struct PostgresSyncStateTests {
    /// The store's schema as a list: every relation, with the row count of each table and the
    /// position of each sequence.
    static func trace(_ store: PostgresStore) async throws -> [String] {
        let logger = store.logger
        return try await store.withConnection { connection in
            var relations: [(String, String)] = []
            for try await row in try await connection.query(
                """
                SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = \(store.target.schema) ORDER BY 1
                """, logger: logger)
            {
                relations.append(try row.decode((String, String).self))
            }
            var lines: [String] = []
            for (name, kind) in relations {
                let quoted = PostgresStore.quoted(name)
                switch kind {
                case "r":
                    for try await row in try await connection.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(quoted)"), logger: logger)
                    {
                        lines.append("table \(name): \(try row.decode(Int64.self)) rows")
                    }
                case "S":
                    for try await row in try await connection.query(
                        PostgresQuery(unsafeSQL: "SELECT last_value, is_called FROM \(quoted)"), logger: logger)
                    {
                        let (value, called) = try row.decode((Int64, Bool).self)
                        lines.append("sequence \(name): \(value) \(called)")
                    }
                default:
                    lines.append("\(kind) \(name)")
                }
            }
            return lines
        }
    }

    /// The number of temporary tables on a connection of the store.
    static func temporaryTables(_ store: PostgresStore) async throws -> Int64 {
        let logger = store.logger
        return try await store.withConnection { connection in
            var count: Int64 = 0
            for try await row in try await connection.query(
                "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()", logger: logger)
            {
                count = try row.decode(Int64.self)
            }
            return count
        }
    }

    /// A diff on a store opened for reading only (`diff`) changes nothing in the schema, creates
    /// no table, and its changes can still be read page by page.
    @Test func aReadOnlyDiffLeavesNoTrace() async throws {
        try await StoreKind.postgres.withStore { store, directory async throws in
            let users = (0..<50).map { "u\($0)" }
            _ = try await StoreContractTests.write(
                try StoreContractTests.stage(
                    users.enumerated().map { StoreContractTests.track("m\($0.offset)", user: $0.element) }, in: directory),
                to: store)
            // Some sync state to diff against: a run written, half of it acknowledged.
            _ = try await StoreContractTests.syncRun(store, now: ingestNow, firstSync: true)
            let pending = try await store.pendingMessages(StoreContractTests.pair, after: 0, limit: 25)
            try await store.acknowledge(StoreContractTests.pair, after: 0, through: pending[24].id, count: 25)
            let postgres = try #require(store as? PostgresStore)
            let before = try await Self.trace(postgres)
            try await StoreKind.postgres.withReadOnly(store) { (reader: any Store) async throws in
                let reader = try #require(reader as? PostgresStore)
                let diff = try await reader.stageDiff(
                    DiffRequest(
                        pair: StoreContractTests.pair, kind: .audience,
                        members: StoreContractTests.everyoneBut("u1", reader), sampleSize: 3))
                #expect(diff.counts.exited == 1 && diff.counts.unchanged == 49 && diff.counts.pending == 25)
                #expect(try await reader.stagedChanges(from: 0, limit: 10).map(\.userId) == ["u1"])
                #expect(try await reader.nextRunId() == 2)
                #expect(try await Self.trace(reader) == before)
                #expect(try await Self.temporaryTables(reader) == 0)
            }
            #expect(try await Self.trace(postgres) == before)
        }
    }

    /// The diff's statement runs in a read-only transaction even on a store open for writing: a
    /// members statement that would write is refused by PostgreSQL.
    @Test func theDiffRunsInAReadOnlyTransaction() async throws {
        try await StoreKind.postgres.withStore { store, _ async throws in
            let writing = CompiledQuery(sql: "SELECT nextval('run_ids')::text AS uid", binds: [])
            await #expect(throws: AudienceSyncError.self) {
                _ = try await store.stageDiff(
                    DiffRequest(pair: StoreContractTests.pair, kind: .audience, members: writing, sampleSize: 1))
            }
            #expect(try await store.nextRunId() == 1)
            // The failed diff left nothing staged to be written by mistake.
            await #expect(throws: AudienceSyncError.self) {
                _ = try await store.writeRun(
                    OutboxRun(
                        pair: StoreContractTests.pair, startedAt: ingestNow, firstSync: true, changes: .stagedDiff,
                        messages: StoreContractTests.maker(now: ingestNow)))
            }
        }
    }

    /// Two clients of one schema (two hosts' cron jobs) exclude each other's sync; the lock is free
    /// again once the first client has closed.
    @Test func twoClientsOfOneSchemaExcludeEachOther() async throws {
        guard let location = try TestPostgres.newLocation() else { return }
        try await TestPostgres.withStore(location) { (second: PostgresStore) async throws in
            try await PostgresStore.withStore(location) { (first: PostgresStore) async throws in
                try await first.withSyncLock {
                    let error = await #expect(throws: AudienceSyncError.self) {
                        try await second.withSyncLock {}
                    }
                    #expect(error?.code == .locked)
                }
            }
            try await second.withSyncLock {}
        }
    }

    /// A holder whose connection dies (its host gone) loses the lock with it: there is never a
    /// stale lock to clear; the holder is told it lost the lock (an error), and does not hang
    /// waiting for an answer from the dead connection.
    @Test func aHolderWhoseConnectionDiesLosesTheLock() async throws {
        guard let location = try TestPostgres.newLocation() else { return }
        try await TestPostgres.withStore(location) { (second: PostgresStore) async throws in
            var toldOfTheLoss = false
            do {
                try await PostgresStore.withStore(location) { (first: PostgresStore) async throws in
                    try await first.withSyncLock {
                        await #expect(throws: AudienceSyncError.self) { try await second.withSyncLock {} }
                        try await Self.terminateSyncLockHolder(of: second)
                        #expect(try await Self.takesLockSoon(second))
                    }
                }
            } catch is AudienceSyncError {
                toldOfTheLoss = true
            }
            #expect(toldOfTheLoss)
            #expect(try await Self.takesLockSoon(second))
        }
    }

    /// Ends the server session that holds the sync lock of `store`'s schema.
    static func terminateSyncLockHolder(of store: PostgresStore) async throws {
        let key = PostgresStore.lockKey(schema: store.target.schema, purpose: "sync")
        let logger = store.logger
        _ = try await store.withConnection { connection in
            try await connection.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND objsubid = 1
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND ((classid::bigint << 32) | objid::bigint) = \(key)
                """, logger: logger)
        }
    }

    /// Whether `store` takes (and gives back) its sync lock within a few seconds: the server
    /// notices a terminated session's end a moment later.
    static func takesLockSoon(_ store: PostgresStore) async throws -> Bool {
        for _ in 0..<50 {
            do {
                try await store.withSyncLock {}
                return true
            } catch let error as AudienceSyncError where error.code == .locked {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return false
    }
}
