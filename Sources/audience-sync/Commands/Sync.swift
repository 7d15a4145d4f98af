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
            let session = try SyncSession(global: global)
            let report = try await session.syncer.sync(
                pairs.selection(force: force),
                now: time.millis)
            session.finish(warnings: report.warnings)
            switch format {
            case .json: Console.output(report.json.jsonString)
            case .text:
                for pair in report.pairs {
                    var line = "\(pair.key) → \(pair.destination): "
                    if let skipped = pair.skipped {
                        line += "skipped (\(skipped))"
                    } else if !pair.due && pair.resumed == 0 {
                        line += "not due"
                    } else {
                        line += "\(pair.sent) sent, \(pair.failed) failed, \(pair.resumed) resumed"
                        if pair.firstSync { line += " (first sync)" }
                        if pair.invalid > 0 { line += " (\(pair.invalid) invalid: never sent)" }
                        if pair.pending > 0 { line += ", \(pair.pending) still pending" }
                    }
                    Console.output(line)
                }
            }
            if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
        }
    }
}
