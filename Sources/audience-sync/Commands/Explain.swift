import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync explain USER_ID`: per definition, member or not, and why.
    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show why a user is or is not in each audience, and their computed-trait values.",
            discussion: """
                Evaluates every enabled definition (or those given with --definition) for one user \
                as of --now (default: the clock): each sub-condition with whether it held for the \
                user and the number of their matching events. Nothing is stored or sent.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The user's userId.", valueName: "user-id"))
        var userId: String

        @Option(name: .customLong("definition"), help: ArgumentHelp("Only this definition (repeatable).", valueName: "key"))
        var keys: [String] = []

        @OptionGroup var time: EvaluationTime

        @Option(help: "Output format: text or json.")
        var format: OutputFormat = .text

        func run() async throws {
            let now = time.millis
            let report = try await CommandContext.run(global, access: .readOnly) { context in
                let explainer = Explainer(engine: context.engine)
                var report = ExplainReport(user: userId, now: now)
                for key in keys.isEmpty ? context.definitions.evaluationOrder.map(\.key) : keys {
                    report.definitions.append(try await explainer.explain(userId: userId, key: key, now: now))
                }
                return report
            }
            Console.print(report, as: format)
        }
    }
}
