import AudienceSync
import Foundation
import Logging

/// The ingest stage: generate NDJSON to a file (timed on its own), then ingest that file with the
/// real `Ingester` into a fresh store (an SQLite file, or a PostgreSQL schema dropped and made
/// again), timed from the ingester's creation to the end of its final commit.
struct IngestRun {
    var users: Int
    var events: Int
    var seed: UInt64
    /// The generator's end of time and the ingest time, epoch milliseconds.
    var now: Int64
    /// An NDJSON file to ingest instead of generating one.
    var input: String?
    var workFolder: WorkFolder
    var location: StoreLocation

    /// Makes the database; `reportIngest` false makes it as setup for later stages, without ingest figures.
    func measure(into report: inout BenchReport, reportIngest: Bool = true) async throws {
        let path: String
        if let input {
            path = input
            Progress.note("ingest: reading \(input) (not generated)")
        } else {
            path = workFolder.file("events.ndjson")
            Progress.note("generating \(events) events for \(users) users (seed \(seed)) into \(path)")
            let clock = ContinuousClock()
            let started = clock.now
            try generate(to: path)
            report.generateSeconds = started.duration(to: clock.now).inSeconds
            Progress.note("generated in \(format(report.generateSeconds!)) s")
        }
        report.peakResidentBeforeIngestMebibytes = ProcessFigures.peakResidentMebibytes()

        try await location.removeAll()
        let logger = Logger(label: "audience-sync-bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let (summary, seconds) = try await location.withStore(access: .readWrite, logger: logger) { store in
            let clock = ContinuousClock()
            let started = clock.now
            let ingester = try Ingester(
                sink: store,
                options: IngestOptions(now: now),
                logger: logger,
                progress: { progress in
                    let rate = progress.seconds > 0 ? Int(Double(progress.accepted) / progress.seconds) : 0
                    Progress.note("ingest: \(progress.lines) lines, \(progress.accepted) stored, \(rate) events/s")
                })
            let summary = try await ingester.run([path])
            return (summary, started.duration(to: clock.now).inSeconds)
        }
        // The store is closed here, so its size is the size at rest.
        let rate = seconds > 0 ? Double(summary.accepted) / seconds : 0
        Progress.note("ingested \(summary.accepted) events in \(format(seconds)) s: \(Int(rate)) events/s")
        if summary.rejected > 0 || summary.duplicates > 0 {
            Progress.note("ingest: \(summary.rejected) rejected, \(summary.duplicates) duplicates")
        }
        if case .postgres = location {
            let clock = ContinuousClock()
            let started = clock.now
            try await location.analyze()
            Progress.note("ingest: ANALYZE (untimed) in \(format(started.duration(to: clock.now).inSeconds)) s")
        }
        report.databaseBytes = try await location.bytes()
        if input != nil { report.events = summary.lines }
        guard reportIngest else { return }
        report.ingestSummary = summary
        report.ingestSeconds = seconds
        report.ingestEventsPerSecond = rate
    }

    private func generate(to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw AudienceSyncError(.io, "cannot write: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(descriptor) }
        let generator = SyntheticEvents(users: users, events: events, seed: seed, now: now)
        try generator.generate { chunk in
            guard var next = chunk.baseAddress else { return }
            var left = chunk.count
            while left > 0 {
                let written = write(descriptor, next, left)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw AudienceSyncError(.io, "cannot write: \(String(cString: strerror(errno)))", file: path)
                }
                next += written
                left -= written
            }
        }
    }

    private func format(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
}

extension Swift.Duration {
    /// The duration in seconds.
    var inSeconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
