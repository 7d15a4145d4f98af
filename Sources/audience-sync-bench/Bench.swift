import ArgumentParser
import AudienceSync
import Foundation
import LoopbackReceiver

/// The benchmark entry point: `swift run -c release audience-sync-bench`.
///
/// Generates synthetic events with the project's own generator (fixed seed), runs the engine's
/// real code paths stage by stage, prints progress on standard error and one JSON object of
/// figures on standard output (see `BENCHMARKS.md`).
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audience-sync-bench",
        abstract: "Measure ingest, compute, diff, delivery and serve on synthetic data; prints one JSON object.",
        discussion: """
            Stages not implemented yet are skipped with a note on standard error; their figures are null.

            Examples:
              swift run -c release audience-sync-bench --events 200000 --stages ingest
              swift run -c release audience-sync-bench --db /tmp/bench.sqlite3 --stages compute
              swift build -c release && swift run -c release audience-sync-bench --stages serve
            """)

    @Option(help: ArgumentHelp("How many distinct users (default: events / 20).", valueName: "n"))
    var users: Int?

    @Option(help: ArgumentHelp("How many messages to generate.", valueName: "m"))
    var events = 2_000_000

    @Option(help: ArgumentHelp("The generator's random seed.", valueName: "s"))
    var seed: UInt64 = 1

    @Option(
        help: ArgumentHelp(
            "Comma-separated stages to run: ingest, compute, diff, deliver, serve (default: all but serve).",
            valueName: "list"))
    var stages = BenchStage.defaultStages.map(\.rawValue).joined(separator: ",")

    @Option(
        help: ArgumentHelp(
            "Reuse this database; it is generated and ingested only when missing and ingest is a stage.",
            valueName: "file"))
    var db: String?

    @Option(
        help: ArgumentHelp(
            "Run ingest, compute, diff and deliver on this PostgreSQL database (postgres://USER@HOST:PORT/DB; the "
                + "password from $PGPASSWORD) instead of SQLite files.",
            valueName: "url"))
    var store: String?

    @Option(
        help: ArgumentHelp(
            "The schema of --store ingest and compute use (an ingest drops and recreates it); diff and deliver "
                + "rebuild <name>_sync.", valueName: "name"))
    var storeSchema = "audience_sync_bench"

    @Option(help: ArgumentHelp("Ingest this NDJSON file instead of generating events.", valueName: "file"))
    var input: String?

    @Option(
        help: ArgumentHelp(
            "Where generated files go (kept); default: a fresh temporary folder, removed at the end.",
            valueName: "dir"))
    var workDir: String?

    @Flag(help: "Keep the temporary work folder (its path is printed on standard error).")
    var keep = false

    @Option(
        help: ArgumentHelp(
            "The generator's end of time, the ingest time and the time definitions are computed at (ISO-8601).",
            valueName: "time"))
    var now = "2026-11-22T12:00:00Z"

    @Option(
        help: ArgumentHelp(
            "The definitions folder the compute stage computes (relative to the current directory).",
            valueName: "dir"))
    var definitions = "fixtures/demo/audiences"

    @Option(
        help: ArgumentHelp(
            "The configuration naming the destinations definitions may use "
                + "(default: audience-sync.yml beside the definitions folder).",
            valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Members of the diff stage's audience (its snapshot differs by 10%).", valueName: "n"))
    var diffMembers = 1_000_000

    @Option(help: ArgumentHelp("Identify messages the deliver stage sends to each destination.", valueName: "n"))
    var deliverMessages = 1_000_000

    @Option(help: ArgumentHelp("Batch requests in flight to the loopback Segment receiver.", valueName: "n"))
    var httpConcurrency = 4

    @Flag(help: "Print the SQL and query plan of the engine and of the baseline for each definition on standard error.")
    var queryPlans = false

    @Option(help: ArgumentHelp("serve: the load's HTTP client, nio or ahc (AsyncHTTPClient).", valueName: "kind"))
    var serveClient = "nio"

    @Option(
        help: ArgumentHelp(
            "serve: connection counts to post /v1/batch with, one run each (the best is the figure).",
            valueName: "list"))
    var serveBatchConnections = "8,16,32"

    @Option(help: ArgumentHelp("serve: /v1/batch requests per connection count.", valueName: "n"))
    var serveBatchRequests = 2_000

    @Option(help: ArgumentHelp("serve: messages per /v1/batch request.", valueName: "n"))
    var serveBatchSize = 100

    @Option(help: ArgumentHelp("serve: connections posting single-message /v1/track.", valueName: "n"))
    var serveTrackConnections = 64

    @Option(help: ArgumentHelp("serve: /v1/track requests of the throughput run.", valueName: "n"))
    var serveTrackRequests = 30_000

    @Option(help: ArgumentHelp("serve: requests per second of the steady (open-loop) run.", valueName: "n"))
    var serveSteadyRate = 2_000.0

    @Option(help: ArgumentHelp("serve: seconds of the steady run.", valueName: "s"))
    var serveSteadySeconds = 10.0

    @Option(help: ArgumentHelp("serve: connections of the steady runs (with and without a sync).", valueName: "n"))
    var serveSteadyConnections = 64

    @Option(
        help: ArgumentHelp(
            "serve: members of the first sync that runs on the same store during the last run (0: no such run).",
            valueName: "n"))
    var serveSyncMembers = 1_000_000

    @Option(help: ArgumentHelp("serve: requests per second while the sync runs.", valueName: "n"))
    var serveSyncRate = 1_000.0

    @Option(
        help: ArgumentHelp(
            "serve: the audience-sync executable to run as the server (default: the one beside this one).",
            valueName: "file"))
    var serveBinary: String?

    /// The serve stage's settings from the `--serve-*` options.
    private var serveOptions: ServeOptions {
        get throws {
            guard let client = LoadClientKind(rawValue: serveClient) else {
                throw ValidationError("--serve-client: expected nio or ahc (got '\(serveClient)').")
            }
            let counts = serveBatchConnections.split(separator: ",").map {
                Int($0.trimmingCharacters(in: .whitespaces))
            }
            guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 1024 }) else {
                throw ValidationError(
                    "--serve-batch-connections: expected numbers from 1 to 1024 like 8,16,32 (got '\(serveBatchConnections)').")
            }
            guard serveBatchRequests >= 1, serveBatchSize >= 1, serveTrackRequests >= 1 else {
                throw ValidationError("--serve-batch-requests, --serve-batch-size and --serve-track-requests must be at least 1.")
            }
            guard (1...1024).contains(serveTrackConnections), (1...1024).contains(serveSteadyConnections) else {
                throw ValidationError("--serve-track-connections and --serve-steady-connections must be between 1 and 1024.")
            }
            guard serveSteadyRate > 0, serveSteadySeconds > 0, serveSyncRate > 0,
                serveSteadyRate * serveSteadySeconds >= 1
            else {
                throw ValidationError("--serve-steady-rate, --serve-steady-seconds and --serve-sync-rate must be positive.")
            }
            guard serveSyncMembers >= 0 else { throw ValidationError("--serve-sync-members must be at least 0.") }
            let beside = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0])
                .deletingLastPathComponent().appendingPathComponent("audience-sync").path
            return ServeOptions(
                client: client, batchConnections: counts.compactMap { $0 }, batchRequests: serveBatchRequests,
                batchSize: serveBatchSize, trackConnections: serveTrackConnections, trackRequests: serveTrackRequests,
                steadyRate: serveSteadyRate, steadySeconds: serveSteadySeconds, steadyConnections: serveSteadyConnections,
                syncMembers: serveSyncMembers, syncRate: serveSyncRate, binary: serveBinary ?? beside)
        }
    }

    /// The configuration file: `--config`, else `audience-sync.yml` in the definitions folder's parent.
    private var configurationPath: String {
        config ?? ((definitions as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("audience-sync.yml")
    }

    func validate() throws {
        guard events >= 1 else { throw ValidationError("--events must be at least 1 (got \(events)).") }
        if let users, users < 1 { throw ValidationError("--users must be at least 1 (got \(users)).") }
        guard Timestamp.parse(now) != nil else {
            throw ValidationError("--now: expected an ISO-8601 time like 2026-11-22T12:00:00Z (got '\(now)').")
        }
        guard diffMembers >= 20 else { throw ValidationError("--diff-members must be at least 20 (got \(diffMembers)).") }
        guard deliverMessages >= 1 else {
            throw ValidationError("--deliver-messages must be at least 1 (got \(deliverMessages)).")
        }
        guard (1...256).contains(httpConcurrency) else {
            throw ValidationError("--http-concurrency must be between 1 and 256 (got \(httpConcurrency)).")
        }
        let requested = try BenchStage.parseList(stages)
        if requested.contains(.serve) { _ = try serveOptions }
        try validateStore(requested)
        if let db, !FileManager.default.fileExists(atPath: db), !requested.contains(.ingest) {
            throw ValidationError("--db '\(db)' does not exist: add ingest to --stages to create it.")
        }
        if let input, !FileManager.default.isReadableFile(atPath: input) {
            throw ValidationError("--input '\(input)' is not a readable file.")
        }
        if requested.contains(.compute) {
            let here = FileManager.default.currentDirectoryPath
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: definitions, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw ValidationError(
                    "--definitions '\(definitions)' is not a folder (a relative path is taken from the current "
                        + "directory, \(here)); run from the repository root or name the folder.")
            }
            guard FileManager.default.isReadableFile(atPath: configurationPath) else {
                throw ValidationError(
                    "the configuration '\(configurationPath)' for the definitions is not a readable file (a relative "
                        + "path is taken from the current directory, \(here)); name it with --config.")
            }
        }
    }

    func run() async throws {
        let requested = try BenchStage.parseList(stages)
        let userCount = users ?? max(1, events / 20)
        let end = Timestamp.parse(now)!
        let workFolder = try WorkFolder(path: workDir, keep: keep)
        defer { workFolder.finish() }

        var report = BenchReport(users: userCount, events: events, seed: seed)
        report.stages = requested.map(\.rawValue)

        // The store the stages run on: a reused --db, one made from generated events, or --store's
        // schema (reused unless ingest is a stage).
        let location = try storeLocation(workFolder)
        report.store = location.kind
        let reused: Bool
        switch location {
        case .sqlite(let path): reused = db != nil && FileManager.default.fileExists(atPath: path)
        case .postgres: reused = !requested.contains(.ingest) && requested.contains(where: \.needsDatabase)
        }
        if reused {
            if requested.contains(.ingest) {
                Progress.note("ingest: skipped, reusing the existing database \(db ?? "")")
            }
            try await location.withStore(access: .readOnly, logger: SQLiteStore.silentLogger) { store in
                report.events = try await store.eventCount()
                report.users = try await store.userCount()
            }
            report.databaseBytes = try await location.bytes()
        } else if requested.contains(where: \.needsDatabase) {
            let run = IngestRun(
                users: userCount, events: events, seed: seed, now: end, input: input,
                workFolder: workFolder, location: location)
            try await run.measure(into: &report, reportIngest: requested.contains(.ingest))
            if input != nil {
                // An --input file's users are whoever it names, not events / 20.
                report.users = try await location.withStore(access: .readOnly, logger: SQLiteStore.silentLogger) {
                    try await $0.userCount()
                }
            }
        }
        if requested.contains(where: \.needsDatabase) { report.storeSettings = try await location.serverSettings() }

        if requested.contains(.compute) {
            let run = ComputeRun(
                definitionsPath: definitions, configurationPath: configurationPath, location: location,
                now: end, showQueryPlans: queryPlans)
            try await run.measure(into: &report)
        }

        if requested.contains(.diff) || requested.contains(.deliver) {
            let run = try SyncRun(
                workFolder: workFolder, storeURL: store, storeSchema: storeSchema, now: end, diffMembers: diffMembers,
                deliverMessages: deliverMessages, httpConcurrency: httpConcurrency)
            // A collector that answers 200 to `POST /v1/batch` (404 to anything else) and counts.
            let receiver = LoopbackReceiver(
                plan: LoopbackReceiver.Plan { request in
                    request.method == "POST" && request.uri == "/v1/batch"
                        ? .ok : .status(404, body: #"{"error":"not found"}"#)
                },
                recording: .countsOnly)
            try await receiver.start()
            do {
                let configurationPath = try await run.prepare(
                    diff: requested.contains(.diff), deliver: requested.contains(.deliver), port: receiver.port)
                if !requested.contains(where: \.needsDatabase) { report.storeSettings = try await run.location.serverSettings() }
                if requested.contains(.diff) {
                    try await run.measureDiff(configurationPath: configurationPath, into: &report)
                }
                if requested.contains(.deliver) {
                    try await run.measureDeliver(configurationPath: configurationPath, receiver: receiver, into: &report)
                }
                await receiver.stop()
            } catch {
                await receiver.stop()
                throw error
            }
        }

        if requested.contains(.serve) {
            let run = ServeRun(workFolder: workFolder, now: end, options: try serveOptions)
            try await run.measure(into: &report)
        }

        for stage in requested where !stage.isImplemented {
            Progress.note("\(stage.rawValue): not implemented yet, skipped (its figures are null)")
        }

        report.peakResidentMebibytes = ProcessFigures.peakResidentMebibytes()
        FileHandle.standardOutput.write(Data((report.json.jsonString + "\n").utf8))
    }

    /// `--store` with what it cannot go with: a `--db`, or a stage that runs on SQLite only.
    private func validateStore(_ requested: [BenchStage]) throws {
        guard let store else { return }
        guard db == nil else { throw ValidationError("--store and --db name two stores: give one of them.") }
        do {
            _ = try PostgresLocation(url: store, schema: storeSchema)
            if requested.contains(.diff) || requested.contains(.deliver) {
                _ = try PostgresLocation(url: store, schema: SyncRun.syncSchema(storeSchema))
            }
        } catch {
            throw ValidationError("--store/--store-schema: \(error)")
        }
        guard !requested.contains(where: \.isSQLiteOnly) else {
            throw ValidationError(
                "--store: the serve stage runs on SQLite only: it starts the audience-sync executable on an SQLite "
                    + "store of the work folder and reads that file to check every message stored; run it without "
                    + "--store (ingest, compute, diff and deliver run on PostgreSQL).")
        }
    }

    /// `--store` (its password from `$PGPASSWORD`, as libpq reads it), else the SQLite file: `--db`, or
    /// `bench.sqlite3` in the work folder.
    private func storeLocation(_ workFolder: WorkFolder) throws -> StoreLocation {
        guard let store else { return .sqlite(path: db ?? workFolder.file("bench.sqlite3")) }
        return .postgres(try PostgresLocation(url: store, schema: storeSchema))
    }
}
