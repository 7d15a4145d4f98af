import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync retire`: removes an orphaned snapshot's users from its destinations (SPEC §6).
    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send false (audience) or null (computed trait) for every user of a key's snapshot, then drop it.",
            discussion: """
                For a snapshot left behind by a definition that was deleted or whose key changed \
                ('status' and 'sync' warn about them). The removals go through the outbox like any \
                sync: durable, re-sent with the same messageIds after a crash, applied to the snapshot \
                batch by batch. Once nothing is left, the snapshot and the pair's record are dropped. \
                Takes the sync lock (exit 3 when another sync holds it). A key that is still an enabled \
                definition is refused unless --force: then its next sync is a first sync and sends its \
                members again. Exit 1 when a removal failed or was left pending: run it again.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The key of the snapshot to retire.", valueName: "key"))
        var key: String

        @Option(name: .customLong("destination"), help: ArgumentHelp("Only this destination (repeatable).", valueName: "name"))
        var destinations: [String] = []

        @OptionGroup var time: EvaluationTime

        @Flag(help: "Retire the key even though an enabled definition still has it.")
        var force = false

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        func run() async throws {
            let now = time.millis
            let report = try await CommandContext.runLocked(global) { _, syncer in
                try await syncer.retire(key: key, destinations: destinations, force: force, now: now)
            }
            Console.print(report, as: format)
            if report.hasFailures { throw ExitCode(1) }
        }
    }
}
