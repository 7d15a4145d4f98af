import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store Segment-spec messages from NDJSON files in the SQLite store.",
            discussion: """
                Each line is one Segment message (track, identify, page, screen, group, alias) or a \
                /v1/batch envelope {"batch": [...]}. Valid messages are stored; bad lines are reported \
                with their file, line number and reason, and the rest of the input is still stored. \
                A message whose messageId is already stored is counted as a duplicate, so ingesting \
                the same file twice stores nothing new; a message without a messageId gets one derived \
                from its content. A gzip file (or standard input), known by its first bytes whatever \
                its name, is decompressed as it is read.

                Exit status: 0 all lines stored or duplicates, 1 some lines were rejected or a gzip \
                input was truncated or corrupt (the lines before are stored), 2 usage or configuration error.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("NDJSON files to read; - reads standard input.", valueName: "file"))
        var files: [String]

        @Flag(help: "Store nothing when any line is bad.")
        var strict = false

        @Option(help: ArgumentHelp("Write rejected lines with their reasons to this file as NDJSON.", valueName: "file"))
        var rejects: String?

        @Option(help: ArgumentHelp("Output format: text or json.", valueName: "format"))
        var format: OutputFormat = .text

        @Option(
            help: ArgumentHelp(
                "Ingest time (ISO-8601): the event time of messages without any timestamp.", valueName: "time"))
        var now: String?

        func validate() throws {
            if files.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input (-) can be read only once") }
            if let now, Timestamp.parse(now) == nil {
                throw ValidationError("--now: expected an ISO-8601 time like 2026-11-22T12:00:00Z (got '\(now)')")
            }
        }

        func run() async throws {
            // Every input must be readable before anything is stored.
            for file in files where file != "-" {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue,
                    FileManager.default.isReadableFile(atPath: file)
                else {
                    throw AudienceSyncError(.usage, "no such readable file", file: file)
                }
            }
            let logger = global.makeLogger()
            let location = try global.storeLocation(nil)
            let showProgress = !global.quiet && Console.standardErrorIsTerminal
            let options = IngestOptions(
                strict: strict, rejectsPath: rejects, now: now.flatMap(Timestamp.parse) ?? Timestamp.now())
            let summary = try await location.withStore(access: .readWrite, logger: logger) { store in
                let ingester = try Ingester(
                    sink: store, options: options, logger: logger,
                    progress: showProgress ? { Console.progress(Self.describe($0)) } : nil)
                return try await ingester.run(files)
            }
            if showProgress { Console.progress(nil) }
            report(summary)
            if summary.rejected > 0 { throw ExitCode(1) }
        }

        static func describe(_ progress: IngestProgress) -> String {
            let rate = progress.seconds > 0 ? Int(Double(progress.lines) / progress.seconds) : 0
            return "ingesting: \(progress.lines.formatted()) lines, \(progress.accepted.formatted()) stored, \(rate.formatted()) lines/s"
        }

        private func report(_ summary: IngestSummary) {
            switch format {
            case .json:
                Console.output(ReportJSON.encode(summary))
            case .text:
                let shown = 20
                for error in summary.errors.prefix(shown) { Console.error("rejected: \(error.description)") }
                if summary.rejected > shown {
                    Console.error(
                        "… and \(summary.rejected - shown) more rejected lines"
                            + (rejects == nil ? " (write them all with --rejects FILE)" : " (all are in \(rejects!))"))
                }
                var lines = [
                    "accepted    \(summary.accepted)",
                    "duplicates  \(summary.duplicates)",
                    "rejected    \(summary.rejected)",
                    "anonymous   \(summary.anonymous)   (stored messages with no userId)",
                ]
                if !summary.stored {
                    lines.insert("--strict: \(summary.rejected) bad lines, so nothing was stored", at: 0)
                }
                if !global.quiet || summary.rejected > 0 {
                    Console.output(lines.joined(separator: "\n"))
                }
            }
        }
    }
}

/// The output formats of reporting commands.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
