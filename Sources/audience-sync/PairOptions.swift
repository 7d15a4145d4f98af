import ArgumentParser
import AudienceSync

/// `--definition KEY... --destination NAME...`: which (definition, destination) pairs `diff` and
/// `sync` work on (default: all).
struct PairOptions: ParsableArguments {
    @Option(name: .customLong("definition"), help: ArgumentHelp("Only this definition key (repeatable).", valueName: "key"))
    var definitions: [String] = []

    @Option(name: .customLong("destination"), help: ArgumentHelp("Only this destination (repeatable).", valueName: "name"))
    var destinations: [String] = []

    func selection(force: Bool) -> SyncSelection {
        SyncSelection(definitions: definitions, destinations: destinations, force: force)
    }
}
