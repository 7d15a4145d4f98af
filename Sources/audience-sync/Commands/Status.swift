import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync status`: the sync state of every pair.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show when each (definition, destination) pair was synced and is next due, and orphaned snapshots.")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Report as of this ISO-8601 time (default: the clock).", valueName: "time"))
        var now: String?

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if let now, Timestamp.parse(now) == nil {
                throw ValidationError("--now: expected an ISO-8601 time like 2026-11-22T12:00:00Z (got '\(now)')")
            }
        }

        func run() async throws {
            let context = try ComputeContext(global: global, now: now)
            let status = try SyncStatus.load(engine: context.engine, configuration: context.configuration, now: context.now)
            switch format {
            case .json: Console.output(status.json.jsonString)
            case .text: Console.output(status.text)
            }
        }
    }
}
