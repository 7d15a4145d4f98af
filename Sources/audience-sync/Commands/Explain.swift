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
            let context = try ComputeContext(global: global, now: time.now)
            let explainer = Explainer(engine: context.engine)
            let selected = keys.isEmpty ? context.engine.definitions.evaluationOrder.map(\.key) : keys
            let explanations = try selected.map { try explainer.explain(userId: userId, key: $0, now: context.now) }
            let nowText = Timestamp.format(context.now)
            switch format {
            case .json:
                Console.output(
                    JSONValue.object([
                        "user": .string(userId), "now": .string(nowText),
                        "definitions": .array(explanations.map(\.json)),
                    ]).jsonString)
            case .text:
                var lines = ["\(userId) at \(nowText)"]
                for explanation in explanations {
                    switch explanation.kind {
                    case .audience:
                        lines.append("\(explanation.key): \(explanation.member ? "member" : "not a member")")
                    case .computedTrait:
                        lines.append("\(explanation.key): \(explanation.value?.json ?? "no value")")
                    }
                    lines += explanation.reasons.map { "  " + $0 }
                }
                Console.output(lines.joined(separator: "\n"))
            }
        }
    }
}
