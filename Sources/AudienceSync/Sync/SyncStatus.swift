extension SyncStatus {
    /// The state of every configured pair at `now`, the orphaned snapshots, and the events that
    /// count for no one.
    public static func load(engine: MembershipEngine, state: any SyncStateStore, configuration: Configuration, now: Int64)
        async throws -> SyncStatus
    {
        var status = SyncStatus(now: now)
        let sizes = Dictionary(try await state.snapshotSizes().map { ($0.pair, $0.count) }, uniquingKeysWith: +)
        for pair in try SyncSelection().pairs(definitions: engine.definitions, configuration: configuration) {
            let name = PairName(key: pair.key, destination: pair.destination.name)
            let record = try await state.pairRecord(name)
            let lastRun = try await state.lastRun(name)
            status.pairs.append(
                Pair(
                    key: pair.key, destination: pair.destination.name, lastSyncedAt: record.lastSyncedAt,
                    nextDueAt: pair.nextDueAt(lastSyncedAt: record.lastSyncedAt, now: now), synced: sizes[name] ?? 0,
                    pending: try await state.pendingCount(name), failed: lastRun?.failed ?? 0,
                    lastOutcome: lastRun.map { $0.outcome == "running" ? "failed" : $0.outcome }))
        }
        status.orphaned = try await orphans(state: state, definitions: engine.definitions)
        status.anonymousEvents = try await engine.source.unlinkedAnonymousEventCount(now: now)
        status.sources = try await sources(engine.source, now: now)
        return status
    }

    /// The events each source sent per day over the last `days` days up to `now`'s day.
    static func sources(_ source: any MembershipSource, now: Int64) async throws -> [Source] {
        let today = now / 86_400_000
        let firstDay = today - Int64(days) + 1
        var bySource: [String: [Int64: Int]] = [:]
        for arrival in try await source.arrivals(from: firstDay) where arrival.day <= today {
            bySource[arrival.source, default: [:]][arrival.day, default: 0] += arrival.count
        }
        return bySource.keys.sorted().map { name in
            let counts = bySource[name] ?? [:]
            let days = (firstDay...today).map { day in
                Source.Day(day: String(Timestamp.format(day * 86_400_000).prefix(10)), events: counts[day] ?? 0)
            }
            return Source(source: name, events: days.reduce(0) { $0 + $1.events }, days: days)
        }
    }

    /// Snapshots that belong to no configured pair (SPEC §6: a definition that disappeared or
    /// changed its key), given the pairs of every definition file, enabled or not.
    static func orphans(state: any SyncStateStore, definitions: DefinitionSet) async throws -> [SyncReport.Orphan] {
        let known = definitions.knownPairs()
        return try await state.snapshotSizes().filter { !known.contains($0.pair) }.map {
            SyncReport.Orphan(key: $0.pair.key, destination: $0.pair.destination, synced: $0.count)
        }
    }
}

extension DefinitionSet {
    /// The (key, destination) pairs of every definition file, enabled or disabled.
    func knownPairs() -> Set<PairName> {
        var result = Set<PairName>()
        for definition in definitions + disabled {
            for destination in definition.destinations { result.insert(PairName(key: definition.key, destination: destination)) }
        }
        return result
    }
}
