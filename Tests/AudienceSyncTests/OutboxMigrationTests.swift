import Testing

@testable import AudienceSync

/// Schema version 3 moves message texts out of `outbox`; a store synced by version 2 keeps every
/// row, state and message byte.
@Suite struct OutboxMigrationTests {
    @Test func aVersionTwoOutboxKeepsItsRowsAndMessages() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v2.db")
        do {
            let database = try Database(path: path)
            try database.migrate(Array(SQLiteSchema.migrations.prefix(2)))
            try database.execute(
                """
                INSERT INTO runs (id, started_at, key, destination, first_sync) VALUES (1, 5, 'k', 'd', 1);
                INSERT INTO outbox (id, run_id, key, destination, user_id, value, removes, message_id, message, state, reason, created_at, updated_at)
                VALUES (1, 1, 'k', 'd', 'u1', 'true', 0, 'as-1-a', '{"userId":"u1"}', 'delivered', NULL, 5, 6),
                       (2, 1, 'k', 'd', 'u2', 'true', 0, 'as-1-b', '{"userId":"u2"}', 'failed', 'no', 5, 6),
                       (3, 1, 'k', 'd', 'u3', 'false', 1, 'as-1-c', '{"userId":"u3 é"}', 'pending', NULL, 5, 5);
                """)
        }
        let store = try await SQLiteStore(path: path)
        #expect(try await store.connection.run { try $0.userVersion } == SQLiteSchema.migrations.count)
        let rows = try await store.connection.run {
            try $0.prepare(
                """
                SELECT o.id, o.user_id, o.value, o.removes, o.message_id, m.message, o.state, o.reason, o.created_at, o.updated_at
                FROM outbox o JOIN outbox_messages m ON m.id = o.id ORDER BY o.id
                """
            ).rows()
        }
        #expect(rows.count == 3)
        #expect(rows.map { $0[5].string } == [#"{"userId":"u1"}"#, #"{"userId":"u2"}"#, #"{"userId":"u3 é"}"#])
        #expect(rows.map { $0[6].string } == ["delivered", "failed", "pending"])
        #expect(rows[1][7].string == "no" && rows[2][3].int64 == 1 && rows[0][9].int64 == 6)
        let pending = try await store.pendingMessages(PairName(key: "k", destination: "d"), after: 0, limit: 10)
        #expect(pending == [OutboundMessage(id: 3, userId: "u3", messageId: "as-1-c", body: #"{"userId":"u3 é"}"#)])
        // The pending rows are found through the partial index.
        let plan = try await store.connection.run {
            try $0.prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE key = 'k' AND destination = 'd' AND state = 'pending' AND id > 0"
            ).rows()
        }.compactMap { $0[3].string }.joined(separator: " ")
        #expect(plan.contains("outbox_pending"))
    }
}

/// Delivered outbox rows are kept a week (by their runs' `now`), pending and failed ones always.
@Suite struct OutboxRetentionTests {
    @Test(arguments: StoreKind.keepingSyncState)
    func deliveredRowsOlderThanAWeekArePrunedOthersStay(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            let day: Int64 = 86_400_000
            let refusing = RecordingDestination()
            refusing.refuse = ["u_dev"]
            _ = try await harness.sync(now: demoNow, destination: refusing)
            // The number of the first runs' outbox rows in `state`.
            func firstRuns(_ state: String) async throws -> Int {
                let runs = Set(try await harness.runs().filter { $0.startedAt == demoNow }.map(\.id))
                return try await harness.outbox().filter { runs.contains($0.runId) && $0.state == state }.count
            }
            let delivered = try await firstRuns("delivered")
            let failed = try await firstRuns("failed")
            #expect(delivered > 0 && failed > 0)

            // Six days later nothing is old enough.
            _ = try await harness.sync(now: demoNow + 6 * day, force: true, destination: RecordingDestination())
            await #expect(try firstRuns("delivered") == delivered)

            // Eight days later the first run's delivered rows are gone; its failed ones stay, and
            // what the later runs sent is still there.
            _ = try await harness.sync(now: demoNow + 8 * day, force: true, destination: RecordingDestination())
            await #expect(try firstRuns("delivered") == 0)
            await #expect(try firstRuns("failed") == failed)
            await #expect(try harness.outbox().contains { $0.state == "delivered" })
            if kind == .sqlite {
                // SQLite keeps the texts in a table of their own (`outbox_messages`): they go with their rows.
                let orphans = try await harness.database { (database: Database) throws -> Int64? in
                    try database.prepare(
                        """
                        SELECT (SELECT count(*) FROM outbox_messages WHERE id NOT IN (SELECT id FROM outbox))
                            + (SELECT count(*) FROM outbox o LEFT JOIN outbox_messages m USING (id) WHERE m.id IS NULL)
                        """
                    ).scalar()?.int64
                }
                #expect(orphans == 0)
            }
        }
    }
}
