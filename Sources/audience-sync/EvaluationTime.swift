import ArgumentParser
import AudienceSync

/// `--now`: the time a command evaluates definitions and schedules at (SPEC §8). It exists so that
/// runs can be replayed and tested; it defaults to the clock.
struct EvaluationTime: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Evaluate as of this ISO-8601 time, e.g. 2026-11-22T12:00:00Z (default: the clock).", valueName: "time"))
    var now: String?

    func validate() throws {
        if let now, Timestamp.parse(now) == nil {
            throw ValidationError("--now: expected an ISO-8601 time like 2026-11-22T12:00:00Z (got '\(now)')")
        }
    }

    /// The time in epoch milliseconds.
    var millis: Int64 { now.flatMap(Timestamp.parse) ?? Timestamp.now() }
}
