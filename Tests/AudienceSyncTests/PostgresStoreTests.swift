import Foundation
import Logging
import PostgresNIO
import SharedTestSupport
import Testing

@testable import AudienceSync

/// What is particular to the PostgreSQL store (SPEC §12): its configuration, its errors, the text
/// it cannot hold, its schema's versions and the plans of its statements. What every store does is
/// in `StoreContractTests` and `DifferentialTests`.
@Suite struct PostgresStoreTests {
    static let silent = Logger(label: "postgres-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: Configuration (no server needed)

    @Test func theConfigurationNamesURLPasswordAndSchema() throws {
        let configuration = try Configuration.parse(
            """
            database: postgres://sync@db.internal:6432/analytics?sslmode=verify-full&pool_size=4
            database_password: env:PGPASS_FOR_SYNC
            database_schema: engage
            """, file: "/etc/as/c.yml")
        #expect(configuration.databasePath == "postgres://sync@db.internal:6432/analytics?sslmode=verify-full&pool_size=4")
        guard case .postgres(let location) = try StoreLocation(configuration) else {
            Issue.record("not a PostgreSQL location")
            return
        }
        #expect(location.host == "db.internal" && location.port == 6432 && location.user == "sync")
        #expect(location.database == "analytics" && location.schema == "engage" && location.poolSize == 4)
        #expect(location.sslMode == .verifyFull)
        #expect(location.password == Secret(.environment("PGPASS_FOR_SYNC")))
        #expect(location.description == "postgres://sync@db.internal:6432/analytics (schema engage)")
        // The password is read when connecting, from the secret.
        let client = try location.clientConfiguration(environment: ["PGPASS_FOR_SYNC": "s3cret"])
        #expect(client.password == "s3cret" && client.database == "analytics" && client.username == "sync")
        #expect(client.options.additionalStartupParameters.contains { $0 == "search_path" && $1 == "engage" })
    }

    @Test func tlsIsRequiredAwayFromLoopbackUnlessTheURLSaysOtherwise() throws {
        #expect(try PostgresLocation(url: "postgres://u@127.0.0.1/d").sslMode == .disable)
        #expect(try PostgresLocation(url: "postgres://u@localhost:5433/d").sslMode == .disable)
        #expect(try PostgresLocation(url: "postgresql://u@db.example.com/d").sslMode == .require)
        #expect(try PostgresLocation(url: "postgres://u@db.example.com/d?sslmode=disable").sslMode == .disable)
        #expect(try PostgresLocation(url: "postgres://u@db.example.com/d").schema == "audience_sync")
    }

    static let mistakes: [(String, String, String)] = [
        (
            "password in the URL", "database: postgres://u:hunter2@h/d\n",
            "c.yml:1:11: database: the URL holds a password, which is refused; give it as database_password: env:NAME or file:PATH (value not shown)"
        ),
        (
            "password written out", "database: postgres://u@h/d\ndatabase_password: hunter2\n",
            "c.yml:2:20: database_password must be env:NAME or file:PATH; a password written into the configuration is refused (value not shown)"
        ),
        (
            "schema not an identifier", "database: postgres://u@h/d\ndatabase_schema: 'a; DROP TABLE x'\n",
            "c.yml:2:18: database_schema: 'a; DROP TABLE x' is not a plain schema name (lower-case letters, digits and _, starting with a letter or _, at most 63)"
        ),
        (
            "unknown parameter", "database: postgres://u@h/d?sslmod=require\n",
            "c.yml:1:11: database: unknown parameter 'sslmod' (known: sslmode, sslrootcert, connect_timeout, pool_size) (expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…])"
        ),
        (
            "bad sslmode", "database: postgres://u@h/d?sslmode=always\n",
            "c.yml:1:11: database: sslmode must be one of disable, prefer, require, verify-ca, verify-full, not 'always' (expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…])"
        ),
        (
            "no database", "database: postgres://u@h\n",
            "c.yml:1:11: database: no database name after the host (expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…])"
        ),
        (
            "password with SQLite", "database: a.db\ndatabase_password: env:X\n",
            "c.yml:2:20: database_password applies only to a PostgreSQL database (database: postgres://…)"
        ),
    ]

    @Test(arguments: mistakes)
    func configurationMistakes(_ what: String, text: String, expected: String) {
        let lines = errorLines { _ = try Configuration.parse(text, file: "c.yml") }
        #expect(lines == [expected], "\(what)")
        #expect(!lines.joined().contains("hunter2"))
    }

    // MARK: Errors

    /// A server that refuses connections: the error names host and database, never the password.
    @Test func aRefusedConnectionNamesHostAndDatabaseNeverThePassword() async throws {
        // A port held, never listening, for the whole test: nothing else can take it meanwhile.
        let refusing = try RefusingPort()
        let port = refusing.port
        defer { withExtendedLifetime(refusing) {} }
        let location = try PostgresLocation(
            url: "postgres://someone@127.0.0.1:\(port)/analytics?connect_timeout=2",
            password: Secret(.environment("PGPASS_REFUSED")))
        setenv("PGPASS_REFUSED", "hunter2-secret", 1)
        let error = await #expect(throws: AudienceSyncError.self) {
            try await PostgresStore.withStore(location, logger: Self.silent) { _ in }
        }
        #expect(error?.code == .store)
        let text = error?.description ?? ""
        #expect(text.contains("127.0.0.1:\(port)") && text.contains("analytics"), "\(text)")
        #expect(!text.contains("hunter2"))
    }

    @Test func aWrongPasswordIsAnAuthenticationErrorWithoutThePassword() async throws {
        guard var location = try TestPostgres.newLocation() else { return }
        location.password = Secret(.environment("PGPASS_WRONG"))
        setenv("PGPASS_WRONG", "not-the-password-42", 1)
        let error = await #expect(throws: AudienceSyncError.self) {
            try await PostgresStore.withStore(location, logger: Self.silent) { _ in }
        }
        let text = error?.description ?? ""
        #expect(text.contains("authentication failed") && text.contains(location.database), "\(text)")
        #expect(!text.contains("not-the-password-42"))
    }

    // MARK: Schema

    @Test func aMissingSchemaIsNotReadAndANewerOneIsRefused() async throws {
        guard let location = try TestPostgres.newLocation() else { return }
        let missing = await #expect(throws: AudienceSyncError.self) {
            try await PostgresStore.withStore(location, access: .readOnly, logger: Self.silent) { _ in }
        }
        #expect(missing?.description.contains("run 'audience-sync ingest' once") == true, "\(missing?.description ?? "")")
        try await TestPostgres.withStore(location) { store in
            // Opening again changes nothing; a version from the future is refused.
            try await PostgresStore.withStore(location, logger: Self.silent) { _ in }
            _ = try await store.withConnection { connection in
                try await connection.query("INSERT INTO schema_migrations (version) VALUES (999)", logger: Self.silent)
            }
            let newer = await #expect(throws: AudienceSyncError.self) {
                try await PostgresStore.withStore(location, logger: Self.silent) { _ in }
            }
            #expect(newer?.description.contains("newer than this program's") == true, "\(newer?.description ?? "")")
            _ = try await store.withConnection { connection in
                try await connection.query("DELETE FROM schema_migrations WHERE version = 999", logger: Self.silent)
            }
        }
    }

    /// Migration 3 drops the outbox's reference to `runs` from a store made by migration 2, keeping
    /// its rows; applied once, it is not applied again.
    @Test func migration3DropsTheOutboxReferenceAndKeepsTheRows() async throws {
        guard let location = try TestPostgres.newLocation() else { return }
        func references(_ store: PostgresStore) async throws -> Int {
            try await store.withConnection { connection in
                var count = 0
                let rows = try await connection.query(
                    """
                    SELECT count(*) FROM pg_constraint
                    WHERE conrelid = 'outbox'::regclass AND contype = 'f'
                    """, logger: Self.silent)
                for try await row in rows { count = Int(try row.decode(Int64.self)) }
                return count
            }
        }
        try await TestPostgres.withStore(location) { store in
            #expect(try await references(store) == 0)
            // The store as migration 2 left it, with a run and an outbox row.
            _ = try await store.withConnection { connection in
                for statement in [
                    "ALTER TABLE outbox ADD CONSTRAINT outbox_run_id_fkey FOREIGN KEY (run_id) REFERENCES runs (id)",
                    "DELETE FROM schema_migrations WHERE version = 3",
                    "INSERT INTO runs (started_at, key, destination, first_sync) VALUES (1, 'k', 'd', true)",
                    """
                    INSERT INTO outbox (run_id, key, destination, user_id, value, removes, message_id, message,
                        created_at, updated_at)
                    SELECT id, 'k', 'd', 'u1', 'true', false, 'm1', '{}', 1, 1 FROM runs
                    """,
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Self.silent)
                }
            }
            #expect(try await references(store) == 1)
            try await PostgresStore.withStore(location, logger: Self.silent) { migrated in
                #expect(try await references(migrated) == 0)
                let kept = try await migrated.withConnection { connection in
                    var ids: [String] = []
                    for try await row in try await connection.query(
                        "SELECT message_id FROM outbox UNION ALL SELECT version::text FROM schema_migrations WHERE version = 3",
                        logger: Self.silent)
                    {
                        ids.append(try row.decode(String.self))
                    }
                    return ids
                }
                #expect(kept == ["m1", "3"])
            }
        }
    }

    // MARK: Text PostgreSQL cannot hold

    /// `\u0000` and unpaired surrogates are rejected with their reason; the other lines are stored.
    @Test func messagesPostgresCannotHoldAreRejectedAndNothingElseIsLost() async throws {
        let directory = try TemporaryDirectory()
        let lines = [
            #"{"type":"track","event":"E","userId":"u1","messageId":"ok1","properties":{"a":"x\\u0000y"}}"#,
            #"{"type":"track","event":"E","userId":"u1","messageId":"nul","properties":{"a":"x\u0000y"}}"#,
            #"{"type":"track","event":"E","userId":"u2","messageId":"lone","properties":{"a":"\ud800"}}"#,
            #"{"type":"track","event":"E","userId":"u3","messageId":"pair","properties":{"a":"\ud83d\ude00 \t"}}"#,
        ]
        let file = try directory.write("events.ndjson", lines.joined(separator: "\n") + "\n")
        let stored = try await TestPostgres.withStore { store in
            let summary = try await Ingester(sink: store, options: IngestOptions(now: ingestNow), logger: Self.silent)
                .run([file])
            #expect(summary.accepted == 2 && summary.rejected == 2)
            #expect(summary.errors.map(\.line) == [2, 3])
            #expect(summary.errors.first?.reason.contains(#"\u0000"#) == true, "\(summary.errors)")
            #expect(summary.errors.last?.reason.contains("unpaired surrogate") == true, "\(summary.errors)")
            let texts = try await store.rows(
                CompiledQuery(sql: "SELECT message #>> '{properties,a}' FROM events ORDER BY message_id", binds: []))
            return texts.map { $0.first?.string }
        }
        guard let stored else { return }
        // The escaped backslash and the tab survive COPY's text format unchanged.
        #expect(stored == [#"x\u0000y"#, "😀 \t"])
    }

    // MARK: Plans

    /// The statements use the indexes: a `performed` condition seeks `events_by_name`, an
    /// anonymous event's link is found through `identity_links`' key.
    @Test func performedConditionsUseTheEventIndex() async throws {
        try await TestPostgres.withStore { store in
            // Enough rows that a sequential scan is not cheaper.
            // Most anonymous ids are linked to a user.
            var lines = (0..<4_000).map {
                #"{"type":"identify","userId":"u\#($0)","anonymousId":"a\#($0)","messageId":"i\#($0)","timestamp":"2026-10-01T00:00:00Z"}"#
            }
            for index in 0..<3_000 {
                let event = ["Order Completed", "Page Viewed", "Signed Up"][index % 3]
                lines.append(
                    #"{"type":"track","event":"\#(event)","anonymousId":"a\#(index)","messageId":"m\#(index)","timestamp":"2026-11-01T00:00:00Z"}"#)
            }
            let directory = try TemporaryDirectory()
            let file = try directory.write("events.ndjson", lines.joined(separator: "\n") + "\n")
            _ = try await Ingester(sink: store, options: IngestOptions(now: ingestNow), logger: Self.silent).run([file])
            // This store's tables only: other tests drop their schemas meanwhile.
            _ = try await store.withConnection { connection in
                try await connection.query("ANALYZE events, identity_links, users", logger: Self.silent)
            }
            let definitions = try DefinitionLoadingTests.load(
                ["buyers.yml": "name: Buyers\ncondition:\n  performed: Order Completed\n"])
            var compiler = QueryCompiler(definitions: definitions, dialect: store.dialect, now: ingestNow)
            let plan = try await store.plan(compiler.statement(for: definitions.evaluationOrder[0]))
            #expect(plan.contains("events_by_name"), "\(plan)")
            #expect(plan.contains("identity_links_pkey"), "\(plan)")
        }
    }
}
