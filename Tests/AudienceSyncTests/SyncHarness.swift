import Crypto
import Foundation
import Logging
import Synchronization
import Testing

@testable import AudienceSync

/// The demo time, and 2.5 hours later (fixtures/demo/EVENTS.md).
let demoNow: Int64 = 1_795_348_800_000
let demoLater: Int64 = demoNow + 9_000_000

/// A destination for tests: records what it receives, refuses chosen users for good, and can
/// "crash" (throw) once it has accepted a number of messages, after writing part of a batch.
final class RecordingDestination: Destination {
    private struct State {
        var received: [OutboundMessage] = []
        var acknowledged: [OutboundMessage] = []
        var crashAfter: Int?
        var refuse: Set<String> = []
    }

    private let state = Mutex(State())

    var received: [OutboundMessage] { state.withLock { $0.received } }
    var acknowledged: [OutboundMessage] { state.withLock { $0.acknowledged } }
    var crashAfter: Int? {
        get { state.withLock { $0.crashAfter } }
        set { state.withLock { $0.crashAfter = newValue } }
    }
    var refuse: Set<String> {
        get { state.withLock { $0.refuse } }
        set { state.withLock { $0.refuse = newValue } }
    }

    func deliver(_ batch: [OutboundMessage]) throws -> [DeliveryResult] {
        try state.withLock { state in
            if let crashAfter = state.crashAfter, state.acknowledged.count + batch.count > crashAfter {
                // The receiver got the first messages of the batch, then the connection died.
                state.received += batch.prefix(max(0, crashAfter - state.acknowledged.count))
                throw AudienceSyncError(.delivery, "simulated crash")
            }
            state.received += batch
            return batch.map { message in
                if state.refuse.contains(message.userId) { return .failed(reason: "refused by the test") }
                state.acknowledged.append(message)
                return .acknowledged
            }
        }
    }
}

/// The demo definitions with a store of one kind and one `file` destination, in a temporary
/// folder. Tests read the sync state through `snapshot`, `outbox`, `runs`, `marks` and `pairExists`,
/// which read the same tables the same way on every store (`SQLiteSchema`, `PostgresSchema`).
final class SyncHarness {
    let kind: StoreKind
    let directory: TemporaryDirectory
    let configuration: Configuration
    let store: any Store
    let engine: MembershipEngine

    /// Runs `body` with a harness on a new, empty store of `kind` (PostgreSQL: in a schema of its
    /// own, dropped afterwards); nil when the kind is not available here (`StoreKind.withStore`).
    /// `definitions`: the folder of definition files (default: the demo's).
    @discardableResult
    static func with<T>(
        _ kind: StoreKind, sendAs: String = "identify", extraDestinations: String = "", definitions: String? = nil,
        _ body: (SyncHarness) async throws -> T
    ) async throws -> T? {
        try await kind.withStore { (store: any Store, directory: TemporaryDirectory) async throws -> T in
            let harness = try SyncHarness(
                kind: kind, store: store, directory: directory, sendAs: sendAs, extraDestinations: extraDestinations,
                definitions: definitions)
            return try await body(harness)
        }
    }

    private init(
        kind: StoreKind, store: any Store, directory: TemporaryDirectory, sendAs: String, extraDestinations: String,
        definitions: String?
    ) throws {
        self.kind = kind
        self.store = store
        self.directory = directory
        let definitions = definitions ?? (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
        // `database:` names the SQLite store's file (`StoreKind.withStore` opens it there); the
        // tests never open a store from the configuration.
        let file = try directory.write(
            "audience-sync.yml",
            """
            database: audiences.db
            definitions: \(definitions)
            schedule: 2h
            space_id: spa_demo
            destinations:
              - name: outbox
                type: file
                path: out/identify.ndjson
                send_as: \(sendAs)
              - name: sprig
                type: sprig
                api_key: env:NO_SPRIG_KEY_IN_TESTS
            \(extraDestinations)
            """)
        configuration = try Configuration.load(file: file)
        engine = MembershipEngine(
            source: store,
            definitions: try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration))
    }

    /// Ingests a file of `fixtures/demo`, or any file given by an absolute path.
    func ingest(_ name: String, now: Int64 = demoNow) async throws {
        let path =
            name.hasPrefix("/") ? name : (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/\(name)")
        _ = try await Ingester(sink: store, options: IngestOptions(now: now), logger: silentLogger).run([path])
    }

    func syncer(_ destination: (any Destination)? = nil, batchSize: Int? = nil) -> Syncer {
        Syncer(
            engine: engine, state: store, configuration: configuration, logger: silentLogger, batchSize: batchSize,
            destinations: DestinationFactory { config in
                if let destination { return destination }
                return try DestinationFactory.standardDestination(config, logger: silentLogger)
            })
    }

    func sync(
        now: Int64, force: Bool = false, definitions: [String] = [], destinations: [String] = ["outbox"],
        destination: (any Destination)? = nil,
        batchSize: Int? = nil
    ) async throws -> SyncReport {
        try await syncer(destination, batchSize: batchSize).sync(
            SyncSelection(definitions: definitions, destinations: destinations, force: force), now: now)
    }

    /// The lines the file destination holds, parsed.
    func output() throws -> [JSONValue] {
        let path = directory.file("out/identify.ndjson")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    // MARK: The sync state's tables, on any store

    /// The rows of `sql` (the tables' and columns' names are the same on every store), its
    /// placeholders written with `placeholder` (the store's spelling), bound to `binds`.
    private func select(_ sql: String, _ binds: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await store.rows(CompiledQuery(sql: sql, binds: binds))
    }

    /// The store's placeholder of bind `index` (1-based).
    private func placeholder(_ index: Int) -> String { store.dialect.placeholder(index) }

    /// `key = … AND destination = …` with the pair's placeholders (binds 1 and 2).
    private var pairCondition: String { "key = \(placeholder(1)) AND destination = \(placeholder(2))" }

    /// The snapshot of a pair: user id → value JSON text.
    func snapshot(_ key: String, destination: String = "outbox") async throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try await select(
            "SELECT user_id, value FROM snapshots WHERE \(pairCondition)", [.text(key), .text(destination)])
        {
            result[try row.text(0)] = try row.text(1)
        }
        return result
    }

    /// The number of snapshot rows, of all pairs together.
    func snapshotRowCount() async throws -> Int {
        Int(try await select("SELECT count(*) FROM snapshots").first?.integer(0) ?? 0)
    }

    /// A row of the outbox.
    struct OutboxRow: Equatable {
        var id: Int64
        var runId: Int64
        var pair: PairName
        var userId: String
        var value: String
        var removes: Bool
        var messageId: String
        /// What the row's own `state` column says: a row that a delivery mark covers keeps `pending`.
        var storedState: String
        /// The row's state in effect (`outbox_states`): `delivered` under its pair's mark.
        var state: String
        var reason: String?
    }

    /// Every row of the outbox, in id order.
    func outbox() async throws -> [OutboxRow] {
        try await select(
            """
            SELECT o.id, o.run_id, o.key, o.destination, o.user_id, o.value, o.removes, o.message_id, o.state,
                s.state, o.reason
            FROM outbox o JOIN outbox_states s ON s.id = o.id ORDER BY o.id
            """
        ).map { row in
            OutboxRow(
                id: try row.integer(0), runId: try row.integer(1),
                pair: PairName(key: try row.text(2), destination: try row.text(3)), userId: try row.text(4),
                value: try row.text(5), removes: try row.boolean(6), messageId: try row.text(7),
                storedState: try row.text(8), state: try row.text(9), reason: row[10].string)
        }
    }

    /// The messageIds of the outbox rows in `state` (in effect), in outbox order.
    func outboxMessageIds(state: String) async throws -> [String] {
        try await outbox().filter { $0.state == state }.map(\.messageId)
    }

    /// A row of `runs`.
    struct RunRow: Equatable {
        var id: Int64
        var startedAt: Int64
        var pair: PairName
        var sent: Int64
        var failed: Int64
        var outcome: String
    }

    /// Every run, in id order.
    func runs() async throws -> [RunRow] {
        let rows = try await select(
            "SELECT id, started_at, key, destination, sent, failed, outcome FROM runs ORDER BY id")
        return try rows.map { row in
            RunRow(
                id: try row.integer(0), startedAt: try row.integer(1),
                pair: PairName(key: try row.text(2), destination: try row.text(3)), sent: try row.integer(4),
                failed: try row.integer(5), outcome: try row.text(6))
        }
    }

    /// The delivery mark of every pair that has one (`outbox_marks.through_id`).
    func marks() async throws -> [PairName: Int64] {
        var marks: [PairName: Int64] = [:]
        for row in try await select("SELECT key, destination, through_id FROM outbox_marks") {
            marks[PairName(key: try row.text(0), destination: try row.text(1))] = try row.integer(2)
        }
        return marks
    }

    /// Whether the store keeps a record of the pair (`pairs`: a completed sync, not yet retired).
    func pairExists(_ key: String, destination: String = "outbox") async throws -> Bool {
        try await !select("SELECT 1 FROM pairs WHERE \(pairCondition)", [.text(key), .text(destination)]).isEmpty
    }

    /// What the store holds, to show that something changed nothing: an SQLite store's file, to
    /// the byte (after a checkpoint); a PostgreSQL store's relations with their row counts and
    /// sequence positions (`PostgresSyncStateTests.trace`).
    func footprint() async throws -> [String] {
        switch store {
        case let store as PostgresStore:
            return try await PostgresSyncStateTests.trace(store)
        case let store as SQLiteStore:
            try await execute("PRAGMA wal_checkpoint(TRUNCATE)")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: store.path))
            return ["\(bytes.count) bytes, SHA-256 \(Hex.string(SHA256.hash(data: bytes)))"]
        default:
            throw AudienceSyncError(.usage, "no footprint of a \(kind) store")
        }
    }

    // MARK: SQLite only

    /// Runs `body` with the SQLite store's connection, for what only an SQLite store has (its
    /// file, its pragmas, its own tables, `SQLitePairDiff`); throws on another store.
    func database<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        guard let store = store as? SQLiteStore else {
            throw AudienceSyncError(.usage, "a test of the SQLite store ran on \(kind)")
        }
        return try await store.connection.run(body)
    }

    func execute(_ sql: String) async throws {
        try await database { try $0.execute(sql) }
    }
}

extension [SQLValue] {
    /// Column `index`, which must be text.
    func text(_ index: Int) throws -> String {
        try #require(self[index].string, "column \(index) of \(self)")
    }

    /// Column `index`, which must be an integer.
    func integer(_ index: Int) throws -> Int64 {
        try #require(self[index].int64, "column \(index) of \(self)")
    }

    /// Column `index` as a boolean: PostgreSQL's `boolean`, SQLite's 0 or 1.
    func boolean(_ index: Int) throws -> Bool {
        switch self[index] {
        case .boolean(let value): return value
        case .integer(let value): return value != 0
        default: throw AudienceSyncError(.store, "column \(index) of \(self) is not a boolean")
        }
    }
}

/// `(userId, key, value JSON)` of an identify message, for comparing what was sent.
func change(_ message: JSONValue) -> String {
    guard case .object(let traits)? = message["traits"], let trait = traits.first else { return "?" }
    return "\(message["userId"]?.stringValue ?? "?") \(trait.key)=\(trait.value.jsonString)"
}
