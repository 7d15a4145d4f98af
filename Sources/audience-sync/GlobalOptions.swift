import ArgumentParser
import AudienceSync
import Foundation
import Logging

/// Options every subcommand takes (SPEC §8).
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "The configuration file (default: $AUDIENCE_SYNC_CONFIG, else ./audience-sync.yml).",
            valueName: "file"))
    var configFile: String?

    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The store: an SQLite file, or postgres://USER@HOST[:PORT]/DATABASE (password from database_password: or $PGPASSWORD); overrides the configuration's database:.",
            valueName: "file-or-url"))
    var databaseFile: String?

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: Logger.Level = .notice

    @Flag(help: "Print only errors and the final result; no progress.")
    var quiet = false

    /// The configuration file to use, and whether the user named it (then it must exist).
    var configLocation: (path: String, explicit: Bool) {
        if let configFile { return (configFile, true) }
        if let fromEnvironment = ProcessInfo.processInfo.environment["AUDIENCE_SYNC_CONFIG"], !fromEnvironment.isEmpty {
            return (fromEnvironment, true)
        }
        return ("audience-sync.yml", false)
    }

    /// The configuration, or nil when none was named and `./audience-sync.yml` does not exist.
    func loadConfiguration(required: Bool) throws -> Configuration? {
        let (path, explicit) = configLocation
        if !explicit && !FileManager.default.fileExists(atPath: path) {
            if required {
                throw AudienceSyncError(
                    .configuration,
                    "no configuration file: ./audience-sync.yml does not exist (name one with --config or $AUDIENCE_SYNC_CONFIG)"
                )
            }
            return nil
        }
        return try Configuration.load(file: path)
    }

    /// Where the store is: `--db`, else the configuration's `database:`.
    func storeLocation(_ configuration: Configuration?) throws -> StoreLocation {
        if let databaseFile {
            // A URL given on the command line takes the configuration's password and schema, if any.
            let configuration = PostgresLocation.isURL(databaseFile) ? try? loadConfiguration(required: false) : nil
            return try StoreLocation(
                databaseFile, password: configuration?.databasePassword,
                schema: configuration?.databaseSchema ?? PostgresLocation.defaultSchema)
        }
        guard let configuration = try configuration ?? loadConfiguration(required: true) else {
            throw AudienceSyncError(.configuration, "no database: give --db or a configuration file")
        }
        return try StoreLocation(configuration)
    }

    /// A logger writing to standard error at the chosen level (`--quiet` raises it to `error`).
    func makeLogger() -> Logger {
        var logger = Logger(label: "audience-sync") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = quiet ? max(logLevel, .error) : logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
