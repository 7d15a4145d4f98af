import Crypto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// The PostgreSQL store (SPEC §12): the tables of the SQLite store, in a schema of a PostgreSQL
/// database, reached through postgres-nio's `PostgresClient` (a pool of connections, run in a task
/// of the `withStore` call that opens it).
///
/// Every statement binds its values; the only names written into SQL are the schema's, checked
/// against a strict grammar (`PostgresLocation.validate(schema:)`), and the tables' own.
/// Rows are streamed from the server: a statement's result is never held whole by the driver.
public final class PostgresStore: Store {
    public let target: PostgresLocation
    public let access: StoreAccess
    public let dialect: any SQLDialect = PostgresDialect()
    public var textLimits: StoredTextLimits { .noNullOrLoneSurrogate }
    let client: PostgresClient
    let logger: Logger
    /// The changes of the last diff (`stageDiff`), until the next one.
    let stagedDiff = NIOLockedValueBox<PostgresStagedChanges?>(nil)
    /// The sync lock while this process holds it (`withSyncLock`), which every write checks.
    let syncLockHolder = NIOLockedValueBox<SyncLockHolder?>(nil)

    public var location: String { target.description }

    /// Connects to the database `target` names, migrates (`.readWrite`) or checks (`.readOnly`)
    /// its schema, runs `body` with the store, and closes every connection however `body` ends.
    public static func withStore<T>(
        _ target: PostgresLocation, access: StoreAccess = .readWrite, logger: Logger = SQLiteStore.silentLogger,
        _ body: (PostgresStore) async throws -> T
    ) async throws -> T {
        let configuration = try target.clientConfiguration()
        // The pool logs each failed connection attempt; the error that reaches the user says it once.
        var background = logger
        background.logLevel = max(logger.logLevel, .critical)
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            do {
                let store = PostgresStore(target: target, access: access, client: client, logger: logger)
                try await store.open()
                let result = try await body(store)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw Self.storeError(error, target: target)
            }
        }
    }

    private init(target: PostgresLocation, access: StoreAccess, client: PostgresClient, logger: Logger) {
        self.target = target
        self.access = access
        self.client = client
        self.logger = logger
    }

    /// Creates the schema when missing and applies the migrations it lacks (`.readWrite`), or
    /// checks that it is current (`.readOnly`). Two processes migrating at once take turns on a
    /// transaction-scoped advisory lock.
    private func open() async throws {
        // The first connection is one of its own: a refused connection, a failed authentication or
        // TLS is reported at once, in the server's words, where the pool would keep trying.
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                on: PostgresClient.defaultEventLoopGroup.any(), configuration: try target.connectionConfiguration(),
                id: 0, logger: logger)
        } catch {
            throw Self.storeError(error, target: target)
        }
        do {
            try await migrate(connection)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw Self.storeError(error, target: target)
        }
    }

    private func migrate(_ connection: PostgresConnection) async throws {
        let schema = target.schema
        let version = try await Self.schemaVersion(connection, schema: schema, logger: logger)
        let expected = PostgresSchema.migrations.count
        if let version, version > expected {
            throw AudienceSyncError(
                .store,
                "\(location): the store has schema version \(version), newer than this program's \(expected); use a newer audience-sync"
            )
        }
        guard access == .readWrite else {
            guard version == expected else {
                throw AudienceSyncError(
                    .store,
                    "\(location): the store has schema version \(version ?? 0), this program expects \(expected); run 'audience-sync ingest' once to create or upgrade it"
                )
            }
            return
        }
        guard version != expected else { return }
        // Created only when missing: a schema made beforehand by an administrator needs no right to
        // create schemas in the database.
        var schemaExists = false
        for try await _ in try await connection.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schema)", logger: logger) {
            schemaExists = true
        }
        if !schemaExists {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(Self.quoted(schema))"), logger: logger)
        }
        try await connection.withTransaction(logger: logger) { connection in
            var bindings = PostgresBindings()
            bindings.append(Self.lockKey(schema: schema, purpose: "migrate"))
            try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT pg_advisory_xact_lock($1)", binds: bindings), logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, logger: logger)
            var applied = 0
            for try await row in try await connection.query(
                "SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger)
            {
                applied = try row.decode(Int.self)
            }
            guard applied < expected else { return }
            for (index, migration) in PostgresSchema.migrations.enumerated() where index >= applied {
                for statement in migration {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (version) VALUES (\(index + 1))", logger: logger)
            }
        }
    }

    /// The store's schema version: nil when the schema or its migrations table does not exist.
    private static func schemaVersion(_ connection: PostgresConnection, schema: String, logger: Logger) async throws -> Int? {
        var exists = false
        for try await _ in try await connection.query(
            "SELECT 1 FROM pg_tables WHERE schemaname = \(schema) AND tablename = 'schema_migrations'", logger: logger)
        {
            exists = true
        }
        guard exists else { return nil }
        var version = 0
        for try await row in try await connection.query(
            "SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger)
        {
            version = try row.decode(Int.self)
        }
        return version
    }

    /// `name` as an SQL identifier (only ever a validated schema name).
    static func quoted(_ name: String) -> String { "\"\(name)\"" }

    /// The key of an advisory lock of this store: one per schema and purpose, the same in every
    /// process and on every host (the schema's SHA-256, not Swift's per-process `hashValue`).
    static func lockKey(schema: String, purpose: String) -> Int64 {
        let digest = SHA256.hash(data: Array("audience-sync:\(purpose):\(schema)".utf8))
        return digest.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }

    /// A connection of the pool for `body`, its failures the library's errors.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection(body)
        } catch {
            throw Self.storeError(error, target: target)
        }
    }

    // MARK: Errors

    /// The library's error for a failure of PostgreSQL: it names the host and database (never the
    /// password) and says what happened; a lock or serialization conflict is `.locked`.
    static func storeError(_ error: any Error, target: PostgresLocation) -> AudienceSyncError {
        let place = "PostgreSQL at \(target.host):\(target.port), database \(target.database)"
        switch error {
        case let error as AudienceSyncError:
            return error
        case let error as PSQLError:
            switch error.code {
            case .server:
                let message = error.serverInfo?[.message] ?? "an error"
                let state = error.serverInfo?[.sqlState] ?? ""
                let detail = error.serverInfo?[.detail].map { " (\($0))" } ?? ""
                switch state {
                case "28P01", "28000":
                    return AudienceSyncError(.store, "\(place): authentication failed: \(message)")
                case "55P03", "40P01", "40001":
                    return AudienceSyncError(.locked, "\(place): \(message)\(detail)")
                default:
                    return AudienceSyncError(.store, "\(place): \(message)\(detail) [SQLSTATE \(state)]")
                }
            case .connectionError:
                let cause = error.underlying.map { "\($0)" } ?? "no connection"
                return AudienceSyncError(.store, "\(place): cannot connect: \(cause)")
            case .sslUnsupported:
                return AudienceSyncError(
                    .store, "\(place): the server does not offer TLS, which sslmode=\(target.sslMode.rawValue) requires")
            case .failedToAddSSLHandler:
                return AudienceSyncError(.store, "\(place): TLS could not be set up: \(error.underlying.map { "\($0)" } ?? "")")
            case .authMechanismRequiresPassword:
                return AudienceSyncError(
                    .store, "\(place): the server asks for a password; give one as database_password: env:NAME or file:PATH")
            case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed:
                return AudienceSyncError(.store, "\(place): the connection was lost (\(error.code))")
            default:
                return AudienceSyncError(.store, "\(place): \(error.code)\(error.underlying.map { ": \($0)" } ?? "")")
            }
        default:
            return AudienceSyncError(.store, "\(place): \(error)")
        }
    }
}

// MARK: Values

extension PostgresBindings {
    /// The binds of a compiled statement, in PostgreSQL's types (a boolean is a `boolean`).
    init(_ values: [SQLValue]) {
        self.init(capacity: values.count)
        for value in values {
            switch value {
            case .null: appendNull()
            case .integer(let value): append(value)
            case .real(let value): append(value)
            case .text(let value): append(value)
            case .boolean(let value): append(value)
            }
        }
    }
}

extension PostgresQuery {
    init(_ query: CompiledQuery) {
        self.init(unsafeSQL: query.sql, binds: PostgresBindings(query.binds))
    }
}

extension PostgresCell {
    /// The cell as an engine-neutral value: JSON (`json`, `jsonb`) and numbers of arbitrary
    /// precision as their text.
    func value() throws -> SQLValue {
        guard var bytes = self.bytes else { return .null }
        switch dataType {
        case .int2, .int4, .int8: return .integer(try decode(Int64.self))
        case .float4, .float8: return .real(try decode(Double.self))
        case .bool: return .boolean(try decode(Bool.self))
        case .jsonb where format == .binary:
            // Binary jsonb is a version byte (1) and the text.
            bytes.moveReaderIndex(forwardBy: 1)
            return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        case .json, .jsonb:
            return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        case .numeric:
            return .text(try decode(String.self))
        default:
            return .text(try decode(String.self))
        }
    }

    /// The cell's text (a text column, or JSON as text); nil when NULL.
    func text() throws -> String? {
        switch try value() {
        case .null: return nil
        case .text(let text): return text
        case .integer(let value): return String(value)
        case .real(let value): return String(value)
        case .boolean(let value): return String(value)
        }
    }
}

// MARK: MembershipSource

extension PostgresStore {
    public func memberIDs(_ query: CompiledQuery) async throws -> [String] {
        try await withConnection { connection in
            var members: [String] = []
            for try await row in try await connection.query(PostgresQuery(query), logger: logger) {
                var cells = row.makeIterator()
                if let uid = try cells.next()?.text() { members.append(uid) }
            }
            return members
        }
    }

    public func memberValues(_ query: CompiledQuery) async throws -> [MemberValue] {
        try await withConnection { connection in
            var values: [MemberValue] = []
            for try await row in try await connection.query(PostgresQuery(query), logger: logger) {
                var cells = row.makeIterator()
                guard let uid = try cells.next()?.text(), let value = try cells.next()?.text() else { continue }
                values.append(MemberValue(userId: uid, value: value))
            }
            return values
        }
    }

    public func rows(_ query: CompiledQuery) async throws -> [[SQLValue]] {
        try await withConnection { connection in
            var rows: [[SQLValue]] = []
            for try await row in try await connection.query(PostgresQuery(query), logger: logger) {
                rows.append(try row.map { try $0.value() })
            }
            return rows
        }
    }

    /// `EXPLAIN`, as PostgreSQL prints it.
    public func plan(_ query: CompiledQuery) async throws -> String {
        var explained = query
        explained.sql = "EXPLAIN " + query.sql
        return try await rows(explained).compactMap { $0.first?.string }.joined(separator: "\n")
    }
}
