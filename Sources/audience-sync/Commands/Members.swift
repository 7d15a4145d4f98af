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
            let context = try ComputeContext(global: global, now: time.now)
            let engine = context.engine
            guard let definition = engine.definitions[key: key] else {
                _ = try engine.statement(key: key, now: context.now)  // throws the "unknown key" error
                return
            }
            let nowText = Timestamp.format(context.now)
            if sql {
                let (text, parameters) = try engine.statement(key: key, now: context.now)
                Console.output(text)
                for (index, value) in parameters.enumerated() { Console.output("-- ?\(index + 1) = \(value)") }
                return
            }
            switch definition.kind {
            case .audience:
                let members = try engine.members(key: key, now: context.now)
                switch format {
                case .json:
                    Console.output(
                        JSONValue.object([
                            "key": .string(key), "now": .string(nowText), "members": .array(members.map(JSONValue.string)),
                        ]).jsonString)
                case .text:
                    if !members.isEmpty { Console.output(members.joined(separator: "\n")) }
                    if !global.quiet { Console.error("\(members.count) members of \(key) at \(nowText)") }
                }
            case .computedTrait:
                let values = try engine.values(key: key, now: context.now)
                let sorted = values.keys.sorted()
                switch format {
                case .json:
                    let members = sorted.map { JSONValue.Member($0, (try? JSONValue.parse(values[$0]!.json)) ?? .null) }
                    Console.output(
                        JSONValue.object([
                            "key": .string(key), "now": .string(nowText), "values": .object(members),
                        ]).jsonString)
                case .text:
                    if !sorted.isEmpty { Console.output(sorted.map { "\($0)\t\(values[$0]!.json)" }.joined(separator: "\n")) }
                    if !global.quiet { Console.error("\(sorted.count) users with a value of \(key) at \(nowText)") }
                }
            }
        }
    }
}

/// What the computing commands share: the configuration, the definitions, the store (read-only)
/// and the evaluation time.
struct ComputeContext {
    let configuration: Configuration
    let engine: MembershipEngine
    let now: Int64

    init(global: GlobalOptions, now: String?) throws {
        guard let configuration = try global.loadConfiguration(required: true) else {
            throw AudienceSyncError(.configuration, "no configuration file")
        }
        self.configuration = configuration
        let definitions = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        let path = global.databaseFile ?? configuration.databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw AudienceSyncError(.usage, "no store yet: run 'audience-sync ingest' first", file: path)
        }
        let store = try EventStore(path: path, mode: .readOnly)
        engine = MembershipEngine(store: store, definitions: definitions)
        self.now = now.flatMap(Timestamp.parse) ?? Timestamp.now()
    }
}
