extension Syncer {
    /// Retires the snapshots of `key` (SPEC §6): for each destination holding one, sends `false`
    /// (audience) or `null` (computed trait) for every user in it through the outbox, exactly as
    /// a sync sends an exit, then drops the pair's record once nothing is left in the snapshot.
    ///
    /// The caller holds the sync lock. Pending messages of the pair (an interrupted sync or retire)
    /// are delivered first, with their messageIds; when they cannot be, nothing new is written.
    /// The removals are written set-based, like a sync's outbox; acknowledged removals leave the
    /// snapshot batch by batch, so an interrupted retire is finished by running it again (or by
    /// the next sync, which resumes pending work).
    ///
    /// Refuses (a usage error, nothing done) a key that is still an enabled definition unless
    /// `force`; then the next sync of that definition is a first sync again and re-sends its members.
    /// Also refuses a key with nothing to retire, and destinations that are not configured or that
    /// this version cannot deliver to.
    public func retire(key: String, destinations filter: [String] = [], force: Bool = false, now: Int64) async throws
        -> RetireReport
    {
        if let definition = engine.definitions[key: key], !force {
            throw AudienceSyncError(
                .usage,
                "'\(key)' is still an enabled definition (\(definition.file)); its next sync would send its members again. "
                    + "Delete or disable the definition first, or give --force to retire it anyway")
        }
        for name in filter where configuration.destination(named: name) == nil {
            let names = configuration.destinations.map(\.name).joined(separator: ", ")
            throw AudienceSyncError(.usage, "--destination: no destination is named '\(name)' (expected one of \(names))")
        }
        let targets = try await state.destinationsHoldingState(key: key).filter { filter.isEmpty || filter.contains($0) }
        guard !targets.isEmpty else {
            let orphans = try await SyncStatus.orphans(state: state, definitions: engine.definitions)
                .map { "\($0.key) → \($0.destination)" }
            let known = orphans.isEmpty ? "there are no orphaned snapshots" : "orphaned: " + orphans.joined(separator: ", ")
            let scope = filter.isEmpty ? "" : " for " + filter.joined(separator: ", ")
            throw AudienceSyncError(.usage, "nothing to retire: no snapshot of '\(key)'\(scope) (\(known))")
        }
        for name in targets where configuration.destination(named: name) == nil {
            throw AudienceSyncError(
                .usage,
                "cannot retire '\(key)' from \(name): no destination is named '\(name)' in the configuration any more "
                    + "(add it back to send the removals, or leave it out with --destination)")
        }
        let kind = try await retiredKind(key: key)
        return try await destinations.withDestinations(targets, configuration: configuration) { open in
            // Every destination is checked before anything is sent.
            var resolved: [(pair: PairName, configuration: DestinationConfiguration, destination: any Destination)] = []
            for name in targets {
                guard let destinationConfiguration = configuration.destination(named: name), let destination = open[name]
                else {
                    let type = configuration.destination(named: name)?.kind.rawValue ?? "?"
                    throw AudienceSyncError(
                        .usage,
                        "cannot retire '\(key)' from \(name): destination type \(type) is not supported yet "
                            + "(leave it out with --destination)")
                }
                resolved.append((PairName(key: key, destination: name), destinationConfiguration, destination))
            }
            var report = RetireReport(key: key, now: now)
            for target in resolved {
                report.destinations.append(
                    try await retire(
                        target.pair, kind: kind, to: target.destination, configuration: target.configuration, now: now,
                        warnings: &report.warnings))
            }
            return report
        }
    }

    private func retire(
        _ pair: PairName, kind: Definition.Kind, to destination: any Destination,
        configuration destinationConfiguration: DestinationConfiguration, now: Int64, warnings: inout [String]
    ) async throws -> RetireReport.Destination {
        var item = RetireReport.Destination(destination: pair.destination)
        // Finish what an interrupted run of this pair left pending, with the same messageIds.
        let earlier = try await delivery.deliver(pair, to: destination)
        item.resumed = earlier.delivered
        item.failed = earlier.failed
        try await runs.finishInterruptedRuns(pair)
        guard earlier.pending == 0 else {
            item.pending = earlier.pending
            warnings.append("\(pair.key) → \(pair.destination): earlier messages are still pending; nothing retired")
            return item
        }
        let started = clock()
        let run = OutboxRun(
            pair: pair, startedAt: now, firstSync: false, changes: .removals(value: kind == .audience ? "false" : "null"),
            messages: OutboxMessageMaker(
                key: pair.key, kind: kind, destination: destinationConfiguration, spaceID: configuration.spaceID, now: now))
        if let written = try await state.writeRun(run) {
            let outcome = try await delivery.deliver(pair, to: destination)
            item.sent = outcome.delivered
            item.failed += outcome.failed
            item.pending = outcome.pending
            try await runs.finish(written.runId, durationMilliseconds: clock() - started)
        }
        item.dropped = try await state.dropPairIfRetired(pair)
        logger.info(
            "retired pair",
            metadata: [
                "key": "\(pair.key)", "destination": "\(pair.destination)", "sent": "\(item.sent)",
                "failed": "\(item.failed)", "pending": "\(item.pending)", "resumed": "\(item.resumed)",
                "dropped": "\(item.dropped)",
            ])
        return item
    }

    /// Whether `key` was an audience or a computed trait: its definition's kind when a file still
    /// defines it; else the class of the last message sent for it; else, with no message left,
    /// an audience when every snapshot value is `true` (an audience snapshot keeps only those).
    private func retiredKind(key: String) async throws -> Definition.Kind {
        if let definition = (engine.definitions.definitions + engine.definitions.disabled).first(where: { $0.key == key }) {
            return definition.kind
        }
        if let text = try await state.lastMessage(key: key),
            let computationClass = (try? JSONValue.parse(text))?["context"]?["personas"]?["computation_class"]?.stringValue
        {
            return computationClass == "trait" ? .computedTrait : .audience
        }
        return try await state.snapshotHoldsValuesOtherThanTrue(key: key) ? .computedTrait : .audience
    }
}
