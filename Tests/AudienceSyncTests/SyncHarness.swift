import Foundation
import Logging
import Synchronization

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

/// The demo definitions with a store and one `file` destination, in a temporary folder.
final class SyncHarness {
    let directory: TemporaryDirectory
    let configuration: Configuration
    let store: SQLiteStore
    let engine: MembershipEngine

    /// `definitions`: the folder of definition files (default: the demo's).
    init(sendAs: String = "identify", extraDestinations: String = "", definitions: String? = nil) async throws {
        directory = try TemporaryDirectory()
        let definitions = definitions ?? (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
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
        store = try await SQLiteStore(path: configuration.databasePath)
        engine = MembershipEngine(
            source: store,
            definitions: try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration))
    }

    /// Ingests a file of `fixtures/demo`, or any file given by an absolute path.
    func ingest(_ name: String, now: Int64 = demoNow) async throws {
        let path = name.hasPrefix("/") ? name : (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/\(name)")
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

    func scalar(_ sql: String, _ values: [SQLiteValue] = []) async throws -> SQLiteValue? {
        try await database { try $0.prepare(sql).scalar(values) }
    }

    func rows(_ sql: String, _ values: [SQLiteValue] = []) async throws -> [[SQLiteValue]] {
        try await database { try $0.prepare(sql).rows(values) }
    }

    func execute(_ sql: String) async throws {
        try await database { try $0.execute(sql) }
    }

    /// Runs `body` with the store's connection (to read or change its tables directly).
    func database<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        try await store.connection.run(body)
    }

    /// The lines the file destination holds, parsed.
    func output() throws -> [JSONValue] {
        let path = directory.file("out/identify.ndjson")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    /// The snapshot of a pair: user id → value JSON text.
    func snapshot(_ key: String, destination: String = "outbox") async throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try await database({
            try $0.prepare("SELECT user_id, value FROM snapshots WHERE key = ?1 AND destination = ?2")
                .rows([.text(key), .text(destination)])
        }) {
            result[row[0].string!] = row[1].string!
        }
        return result
    }
}

/// `(userId, key, value JSON)` of an identify message, for comparing what was sent.
func change(_ message: JSONValue) -> String {
    guard case .object(let traits)? = message["traits"], let trait = traits.first else { return "?" }
    return "\(message["userId"]?.stringValue ?? "?") \(trait.key)=\(trait.value.jsonString)"
}
