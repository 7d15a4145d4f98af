import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync members KEY`: the current members of an audience or values of a computed trait.
    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the members of an audience, or the values of a computed trait, at a time.",
            discussion: """
                Computes KEY from the stored events as of --now (default: the clock) and prints one \
                user id per line (audiences) or 'user<TAB>value' (computed traits, value as JSON), \
                sorted by user id. Nothing is stored or sent.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The definition's key (see 'audience-sync validate').", valueName: "key"))
        var key: String

        @OptionGroup var time: EvaluationTime

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        @Flag(help: "Print the SQL statement and its parameters instead of running it.")
        var sql = false

        func run() async throws {
            let now = time.millis
            let report = try await CommandContext.run(global, access: .readOnly) { context -> MembersReport? in
                let engine = context.engine
                let statement = try engine.statement(key: key, now: now)
                if sql {
                    Console.output(statement.sql)
                    for (index, value) in statement.binds.enumerated() {
                        Console.output("-- \(context.store.dialect.placeholder(index + 1)) = \(value)")
                    }
                    return nil
                }
                switch context.definitions[key: key]?.kind {
                case .audience?:
                    return MembersReport(key: key, now: now, result: .members(try await engine.members(key: key, now: now)))
                case .computedTrait?, nil:
                    return MembersReport(key: key, now: now, result: .values(try await context.store.memberValues(statement)))
                }
            }
            guard let report else { return }
            switch format {
            case .json:
                Console.output(ReportJSON.encode(report))
            case .text:
                if report.count > 0 { Console.output(report.text) }
                if !global.quiet {
                    let noun = if case .members = report.result { "members of" } else { "users with a value of" }
                    Console.error("\(report.count) \(noun) \(key) at \(Timestamp.format(now))")
                }
            }
        }
    }
}
