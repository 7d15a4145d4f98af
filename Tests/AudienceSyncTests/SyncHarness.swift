import Foundation
import Logging

@testable import AudienceSync

/// The demo time, and 2.5 hours later (fixtures/demo/EVENTS.md).
let demoNow: Int64 = 1_795_348_800_000
let demoLater: Int64 = demoNow + 9_000_000

/// A destination for tests: records what it receives, refuses chosen users for good, and can
/// "crash" (throw) once it has accepted a number of messages, after writing part of a batch.
final class RecordingDestination: Destination {
    var received: [OutboundMessage] = []
    var acknowledged: [OutboundMessage] = []
    var crashAfter: Int?
    var refuse: Set<String> = []

    func deliver(_ batch: [OutboundMessage]) throws -> [DeliveryResult] {
        if let crashAfter, acknowledged.count + batch.count > crashAfter {
            // The receiver got the first messages of the batch, then the connection died.
            received += batch.prefix(max(0, crashAfter - acknowledged.count))
            throw AudienceSyncError(.delivery, "simulated crash")
        }
        received += batch
        return batch.map { message in
            if refuse.contains(message.userId) { return .failed(reason: "refused by the test") }
            acknowledged.append(message)
            return .acknowledged
        }
    }
}

/// The demo definitions with a store and one `file` destination, in a temporary folder.
final class SyncHarness {
    let directory: TemporaryDirectory
    let configuration: Configuration
    let store: EventStore
    let engine: MembershipEngine

    /// `definitions`: the folder of definition files (default: the demo's).
    init(sendAs: String = "identify", extraDestinations: String = "", definitions: String? = nil) throws {
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
        store = try EventStore(path: configuration.databasePath)
        engine = MembershipEngine(
            store: store,
            definitions: try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration))
    }

    /// Ingests a file of `fixtures/demo`, or any file given by an absolute path.
    func ingest(_ name: String, now: Int64 = demoNow) throws {
        let path = name.hasPrefix("/") ? name : (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/\(name)")
        let ingester = try Ingester(store: store, options: IngestOptions(now: now), logger: silentLogger)
        try ingester.ingest(path: path)
        _ = try ingester.finish()
    }

    func syncer(_ destination: (any Destination)? = nil, batchSize: Int? = nil) -> Syncer {
        Syncer(engine: engine, configuration: configuration, logger: silentLogger, batchSize: batchSize) { config in
            if let destination { return destination }
            return try Syncer.standardDestination(config, logger: silentLogger)
        }
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

    /// The snapshot of a pair: user id → value JSON text.
    func snapshot(_ key: String, destination: String = "outbox") throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try store.database.prepare(
            "SELECT user_id, value FROM snapshots WHERE key = ?1 AND destination = ?2"
        ).rows([.text(key), .text(destination)]) {
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
