import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync status`: the sync state of every pair.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show when each (definition, destination) pair was synced and is next due, and orphaned snapshots.")

        @OptionGroup var global: GlobalOptions

        @OptionGroup var time: EvaluationTime

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        func run() async throws {
            let now = time.millis
            let status = try await CommandContext.run(global, access: .readOnly) { context in
                try await SyncStatus.load(
                    engine: context.engine, state: context.store, configuration: context.configuration, now: now)
            }
            Console.print(status, as: format)
        }
    }
}
