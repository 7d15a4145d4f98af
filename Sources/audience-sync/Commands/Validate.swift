import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync validate`: checks the configuration and every definition file.
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the configuration and every definition file; list name -> key.",
            discussion: """
                Reads audience-sync.yml and every *.yml / *.yaml file of its definitions folder and \
                reports every problem at once, as file:line:column: message. Secrets (env:NAME, \
                file:PATH) are not read. Nothing is computed or sent.

                Exit status: 0 when everything is valid, 2 on any configuration or definition error.
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, json
        }

        @OptionGroup var global: GlobalOptions

        @Option(help: "Output format: text (a table) or json (one document, for scripts).")
        var format: Format = .text

        func run() async throws {
            guard let configuration = try global.loadConfiguration(required: true) else { return }
            let set = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
            switch format {
            case .json:
                Console.output(ReportJSON.encode(ValidationReport(set)))
            case .text:
                Console.output(ValidationReport(set).table)
                if !global.quiet {
                    var summary = "\(set.definitions.count) definition\(set.definitions.count == 1 ? "" : "s") valid"
                    if !set.disabled.isEmpty {
                        summary += "; disabled: " + set.disabled.map(\.file).joined(separator: ", ")
                    }
                    Console.error(summary)
                }
            }
        }
    }
}
