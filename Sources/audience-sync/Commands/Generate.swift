import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync generate`: synthetic Segment-spec events as NDJSON, for demos and benchmarks.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write synthetic Segment-spec events as NDJSON (for demos and benchmarks).",
            discussion: """
                Writes exactly --events messages, one per line, with event times spread over the \
                --days before --now: identify (traits plan, company, role, email, name), track \
                (Signed Up, Product Viewed, Order Completed, Sprig survey responses, ...), page and \
                screen views, and alias. Anonymous visitors browse first; most identify later, some \
                never do. Some users are much more active than others.

                The output is deterministic: the same --users, --events, --seed, --days and --now \
                always give the same bytes, so give --now to reproduce a file. Change --seed for \
                different data of the same shape.

                Example:
                  audience-sync generate --users 1000 --events 50000 -o events.ndjson
                  audience-sync ingest events.ndjson
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("How many distinct users (at least 1).", valueName: "n"))
        var users: Int

        @Option(help: ArgumentHelp("How many messages (lines) to write.", valueName: "m"))
        var events: Int

        @Option(help: ArgumentHelp("The random seed; a different seed gives different data.", valueName: "s"))
        var seed: UInt64 = 1

        @Option(help: ArgumentHelp("Spread event times over this many days before --now.", valueName: "d"))
        var days: Int = 90

        @Option(
            help: ArgumentHelp(
                "The end of the time window, ISO-8601 (e.g. 2026-11-22T12:00:00Z); default: the clock.",
                valueName: "time"))
        var now: String?

        @Option(
            name: [.short, .long],
            help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
        var output: String?

        func validate() throws {
            guard users >= 1 else { throw ValidationError("--users must be at least 1 (got \(users)).") }
            guard events >= 0 else { throw ValidationError("--events must not be negative (got \(events)).") }
            guard days >= 1 else { throw ValidationError("--days must be at least 1 (got \(days)).") }
            guard days <= 36_500 else { throw ValidationError("--days must be at most 36500 (got \(days)).") }
            if let now, Timestamp.parse(now) == nil {
                throw ValidationError(
                    "--now '\(now)' is not an ISO-8601 instant (expected e.g. 2026-11-22T12:00:00Z or 2026-11-22T14:00:00+02:00)."
                )
            }
        }

        func run() async throws {
            let end = now.flatMap(Timestamp.parse) ?? Timestamp.now()
            let generator = SyntheticEvents(users: users, events: events, seed: seed, days: days, now: end)
            let file = try OutputFile(path: output)
            defer { file.close() }
            try generator.generate { chunk in try file.write(chunk) }
        }
    }
}

/// A file descriptor written with large `write(2)` calls: standard output, or a file created or truncated.
private struct OutputFile {
    let descriptor: Int32
    let path: String?

    init(path: String?) throws {
        self.path = path
        guard let path else {
            descriptor = STDOUT_FILENO
            return
        }
        let opened = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard opened >= 0 else {
            throw AudienceSyncError(.io, "cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        descriptor = opened
    }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard var next = chunk.baseAddress else { return }
        var left = chunk.count
        while left > 0 {
            let written = Foundation.write(descriptor, next, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw AudienceSyncError(
                    .io, "cannot write '\(path ?? "standard output")': \(String(cString: strerror(errno)))")
            }
            next += written
            left -= written
        }
    }

    func close() {
        if path != nil { _ = Foundation.close(descriptor) }
    }
}
