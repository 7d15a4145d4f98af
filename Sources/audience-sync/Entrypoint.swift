import ArgumentParser
import AudienceSync
import Foundation

/// The `audience-sync` command: argument parsing only; all behaviour lives in the AudienceSync library.
@main
struct AudienceSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audience-sync",
        abstract: "Compute audiences from Segment-spec events and sync membership changes to destinations.",
        version: AudienceSyncVersion.version,
        subcommands: [
            Ingest.self, Validate.self, Members.self, Explain.self, Diff.self, Sync.self, Status.self, Retire.self,
            Generate.self,
        ]
    )

    /// Runs the command, mapping errors to the exit statuses of SPEC §8
    /// (2 usage/configuration/definition, 3 lock held, 1 partial failure).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exitReporting(error)
        }
    }

    static func exitReporting(_ error: any Error) -> Never {
        switch error {
        case let error as AudienceSyncError:
            Console.error("error: \(error)")
            Foundation.exit(error.code.exitStatus)
        case let error as AudienceSyncErrors:
            for item in error.errors { Console.error("error: \(item)") }
            Foundation.exit(error.exitStatus)
        case let error as SQLiteError:
            Console.error("error: \(error)")
            Foundation.exit(error.isBusy ? 3 : 1)
        case let error as ExitCode:
            Foundation.exit(error.rawValue)
        default:
            if exitCode(for: error) == .validationFailure {
                Console.error(fullMessage(for: error))
                Console.error("(see 'audience-sync --help')")
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
