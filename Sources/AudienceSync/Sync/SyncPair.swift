/// A (definition, destination) pair: the unit of sync (SPEC §6).
public struct SyncPair: Sendable {
    public var definition: Definition
    public var destination: DestinationConfiguration

    public var key: String { definition.key }

    public init(definition: Definition, destination: DestinationConfiguration) {
        self.definition = definition
        self.destination = destination
    }

    /// Why this pair cannot be synced by this version, or nil when it can. Every kind is delivered
    /// to now; the switch makes a new kind say whether it is.
    public var unsupportedReason: String? {
        switch destination.kind {
        case .file, .segment, .sprig: return nil
        }
    }

    /// Whether the pair is due at `now`: never synced, or its last completed sync started at least
    /// the definition's schedule ago.
    public func isDue(lastSyncedAt: Int64?, now: Int64) -> Bool {
        guard let lastSyncedAt else { return true }
        return now - lastSyncedAt >= definition.schedule.milliseconds
    }

    /// When the pair is next due: `now` when never synced.
    public func nextDueAt(lastSyncedAt: Int64?, now: Int64) -> Int64 {
        guard let lastSyncedAt else { return now }
        return lastSyncedAt + definition.schedule.milliseconds
    }
}

/// Which pairs a `diff` or `sync` looks at: `--definition` and `--destination` filters (empty: all).
public struct SyncSelection: Sendable {
    public var definitions: [String]
    public var destinations: [String]
    /// `--force`: sync every selected pair, due or not.
    public var force: Bool

    public init(definitions: [String] = [], destinations: [String] = [], force: Bool = false) {
        self.definitions = definitions
        self.destinations = destinations
        self.force = force
    }

    /// The selected pairs, in definition order then each definition's destination order.
    /// An unknown key or destination name is a usage error (nothing is done).
    public func pairs(definitions set: DefinitionSet, configuration: Configuration) throws -> [SyncPair] {
        for key in definitions where set[key: key] == nil {
            let keys = set.definitions.map(\.key).sorted().joined(separator: ", ")
            throw AudienceSyncError(.usage, "--definition: no enabled definition has the key '\(key)' (expected one of \(keys))")
        }
        for name in destinations where configuration.destination(named: name) == nil {
            let names = configuration.destinations.map(\.name).joined(separator: ", ")
            throw AudienceSyncError(.usage, "--destination: no destination is named '\(name)' (expected one of \(names))")
        }
        var result: [SyncPair] = []
        for definition in set.definitions where definitions.isEmpty || definitions.contains(definition.key) {
            for name in definition.destinations where destinations.isEmpty || destinations.contains(name) {
                guard let destination = configuration.destination(named: name) else { continue }
                result.append(SyncPair(definition: definition, destination: destination))
            }
        }
        return result
    }
}
