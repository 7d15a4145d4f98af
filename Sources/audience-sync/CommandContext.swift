import AudienceSync
import Foundation
import Logging

/// What the commands that work on definitions share (`members`, `explain`, `diff`, `status`,
/// `sync`, `retire`): the configuration, the definitions and the store, opened for reading only
/// unless the command writes. The one place a command is set up.
struct CommandContext {
    let configuration: Configuration
    let definitions: DefinitionSet
    let store: any Store
    let logger: Logger

    var engine: MembershipEngine { MembershipEngine(source: store, definitions: definitions) }

    /// A syncer of this context's definitions, showing delivery progress on a terminal.
    func syncer(quiet: Bool) -> Syncer {
        var syncer = Syncer(store: store, definitions: definitions, configuration: configuration, logger: logger)
        syncer.progress = Console.deliveryProgress(quiet: quiet)
        return syncer
    }

    /// Loads the configuration and the definitions, opens the store (which must exist: it is
    /// made by `ingest`) and runs `body` with them.
    static func run<T>(
        _ global: GlobalOptions, access: StoreAccess, _ body: (CommandContext) async throws -> T
    ) async throws -> T {
        guard let configuration = try global.loadConfiguration(required: true) else {
            throw AudienceSyncError(.configuration, "no configuration file")
        }
        let definitions = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        let location = try global.storeLocation(configuration)
        guard location.exists else {
            throw AudienceSyncError(.usage, "no store yet: run 'audience-sync ingest' first", file: global.databaseFile ?? configuration.databasePath)
        }
        let logger = global.makeLogger()
        return try await location.withStore(access: access, logger: logger) { store in
            try await body(CommandContext(configuration: configuration, definitions: definitions, store: store, logger: logger))
        }
    }

    /// `run` for the commands that send (`sync`, `retire`): the store opened for writing, under its
    /// sync lock (exit 3 at once when another process holds it). The progress line is cleared and
    /// the run's warnings printed once the lock is released.
    static func runLocked<Report: SendingReport>(
        _ global: GlobalOptions, _ body: (CommandContext, Syncer) async throws -> Report
    ) async throws -> Report {
        let report = try await run(global, access: .readWrite) { context in
            try await context.store.withSyncLock { try await body(context, context.syncer(quiet: global.quiet)) }
        }
        Console.finishProgress(quiet: global.quiet, warnings: report.warnings)
        return report
    }
}

/// A report a command prints: one JSON document with `--format json`, else its text.
protocol CommandReport: Encodable {
    var text: String { get }
}

/// The report of a command that sends: its warnings go to standard error, and a failed or pending
/// delivery is a partial failure (exit 1).
protocol SendingReport: CommandReport {
    var warnings: [String] { get }
    var hasFailures: Bool { get }
}

extension SyncReport: SendingReport {}
extension RetireReport: SendingReport {}
extension SyncStatus: CommandReport {}
extension ExplainReport: CommandReport {}

extension Console {
    /// Prints `report` in `format`.
    static func print(_ report: some CommandReport, as format: OutputFormat) {
        switch format {
        case .json: output(ReportJSON.encode(report))
        case .text: output(report.text)
        }
    }
}
