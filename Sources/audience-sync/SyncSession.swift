import AudienceSync
import Foundation

/// What `sync` and `retire` share: the configuration and definitions, the store opened for writing
/// under the sync lock (exit 3 at once when another sync holds it), and a syncer that shows its
/// progress on a terminal.
struct SyncSession {
    let syncer: Syncer
    private let lock: SyncLock
    private let showsProgress: Bool

    init(global: GlobalOptions) throws {
        guard let configuration = try global.loadConfiguration(required: true) else {
            throw AudienceSyncError(.configuration, "no configuration file")
        }
        let definitions = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        let path = global.databaseFile ?? configuration.databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw AudienceSyncError(.usage, "no store yet: run 'audience-sync ingest' first", file: path)
        }
        lock = try SyncLock(databasePath: path)
        let store = try EventStore(path: path)
        syncer = Syncer(
            engine: MembershipEngine(store: store, definitions: definitions), configuration: configuration,
            logger: global.makeLogger())
        let progress = Console.deliveryProgress(quiet: global.quiet)
        syncer.progress = progress
        showsProgress = progress != nil
    }

    /// Clears the progress line and prints the run's warnings. The lock is held until here.
    func finish(warnings: [String]) {
        withExtendedLifetime(lock) {}
        if showsProgress { Console.progress(nil) }
        for warning in warnings { Console.error("warning: \(warning)") }
    }
}
