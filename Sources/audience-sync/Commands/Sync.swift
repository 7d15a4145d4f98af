import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync sync`: the cron job (SPEC §6).
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send membership changes of the due (definition, destination) pairs.",
            discussion: """
                Takes the database's sync lock (exit 3 when another sync holds it), finishes delivery \
                left pending by an interrupted run, then diffs each due pair against its snapshot and \
                delivers the changes. Exit 1 when a delivery failed or was left pending; exit 2 when a \
                destination's secret (env:NAME or file:PATH) is missing, before anything is sent.
                """)

        @OptionGroup var global: GlobalOptions

        @OptionGroup var pairs: PairOptions

        @OptionGroup var time: EvaluationTime

        @Flag(help: "Sync every selected pair, due or not.")
        var force = false

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        func run() async throws {
            let now = time.millis
            let report = try await CommandContext.runLocked(global) { _, syncer in
                try await syncer.sync(pairs.selection(force: force), now: now)
            }
            Console.print(report, as: format)
            if report.hasFailures { throw ExitCode(1) }
        }
    }
}
