import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync diff`: what a forced sync would send, changing nothing.
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what 'sync --force' would send at a time, without sending or changing anything.",
            discussion: """
                Opens the store read-only. Per (definition, destination) pair: first sync or not, due or \
                not, members now, synced snapshot size, entering, exiting, changed, unchanged and pending \
                messages, with sample user ids. --format ndjson prints the exact messages; --format html \
                a self-contained page (no scripts, no external files) to open in a browser.
                """)

        @OptionGroup var global: GlobalOptions

        @OptionGroup var pairs: PairOptions

        @OptionGroup var time: EvaluationTime

        @Option(help: "Output format: text, json, ndjson or html.")
        var format: DiffFormat = .text

        func run() async throws {
            let now = time.millis
            // ndjson streams the messages as they are made; the other formats only count them.
            let output = LineBuffer()
            let report = try await CommandContext.run(global, access: .readOnly) { context in
                try await context.syncer(quiet: true).dryRun(
                    pairs.selection(force: true), now: now, messages: format == .ndjson ? .stream(output.write) : .count)
            }
            output.flush()
            switch format {
            case .text: Console.output(report.text)
            case .json: Console.output(ReportJSON.encode(report))
            case .ndjson: break
            case .html: Console.output(DiffHTMLReport.render(report))
            }
        }
    }
}

/// The output formats of `diff`.
enum DiffFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, ndjson, html
}

/// Lines to standard output, written in blocks of about 1 MB rather than one system call each.
final class LineBuffer {
    private var bytes: [UInt8] = []

    func write(_ line: String) {
        bytes.append(contentsOf: line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        if bytes.count >= 1 << 20 { flush() }
    }

    func flush() {
        guard !bytes.isEmpty else { return }
        FileHandle.standardOutput.write(Data(bytes))
        bytes.removeAll(keepingCapacity: true)
    }
}
