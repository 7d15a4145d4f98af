import ArgumentParser
import AudienceSync

/// The benchmark entry point: `swift run -c release audience-sync-bench`.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audience-sync-bench",
        abstract: "Measure ingest, compute, diff and delivery on synthetic data; prints one JSON object.")

    func run() throws {}
}
