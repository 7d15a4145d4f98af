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
            Generate.self, Serve.self,
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
            Foundation.exit(exitStatus(error.code))
        case let error as AudienceSyncErrors:
            for item in error.errors { Console.error("error: \(item)") }
            Foundation.exit(error.errors.map { exitStatus($0.code) }.max() ?? 1)
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

    /// The exit status of SPEC §8 for an error: 2 when nothing was done because of the usage, the
    /// configuration or a definition; 3 when another sync holds the lock (or the store stayed
    /// locked); 1 otherwise.
    static func exitStatus(_ code: AudienceSyncError.Code) -> Int32 {
        if code.isUsage { return 2 }
        if code == .locked { return 3 }
        return 1
    }
}
