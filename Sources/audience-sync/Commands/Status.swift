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
            let context = try ComputeContext(global: global, now: time.now)
            let status = try SyncStatus.load(engine: context.engine, configuration: context.configuration, now: context.now)
            switch format {
            case .json: Console.output(status.json.jsonString)
            case .text: Console.output(status.text)
            }
        }
    }
}
