/// What one `retire` did (SPEC §6, §10).
public struct RetireReport: Sendable {
    public struct Destination: Sendable, Equatable {
        public var destination: String
        /// Removals (`false` or `null`) of this retire acknowledged by the destination.
        public var sent = 0
        /// Removals refused for good: those users stay in the snapshot; run `retire` again.
        public var failed = 0
        /// Removals left pending because delivery stopped (the next `retire` or `sync` sends them).
        public var pending = 0
        /// Messages of an earlier, interrupted run (sync or retire) of the pair delivered first.
        public var resumed = 0
        /// Whether the snapshot and the pair's record are gone: everything was acknowledged.
        public var dropped = false
    }

    public var key: String
    public var now: Int64
    public var destinations: [Destination] = []
    public var warnings: [String] = []

    /// SPEC §8: 1 when a removal failed or was left pending, else 0.
    public var exitStatus: Int32 { destinations.contains { $0.failed > 0 || $0.pending > 0 } ? 1 : 0 }

    public var json: JSONValue {
        .object([
            "key": .string(key),
            "now": .string(Timestamp.format(now)),
            "destinations": .array(
                destinations.map {
                    .object([
                        "destination": .string($0.destination), "sent": .int($0.sent), "failed": .int($0.failed),
                        "pending": .int($0.pending), "resumed": .int($0.resumed), "dropped": .bool($0.dropped),
                    ])
                }),
        ])
    }

    public var text: String {
        destinations.map { item in
            var line = "\(key) → \(item.destination): \(item.sent) removed, \(item.failed) failed"
            if item.resumed > 0 { line += ", \(item.resumed) resumed" }
            if item.pending > 0 { line += ", \(item.pending) still pending" }
            line += item.dropped ? "; snapshot dropped" : "; snapshot kept (run 'audience-sync retire \(key)' again)"
            return line
        }.joined(separator: "\n")
    }
}

extension Syncer {
    /// Retires the snapshots of `key` (SPEC §6): for each destination holding one, sends `false`
    /// (audience) or `null` (computed trait) for every user in it through the outbox, exactly as
    /// a sync sends an exit, then drops the pair's record once nothing is left in the snapshot.
    ///
    /// The caller holds the `SyncLock`. Pending messages of the pair (an interrupted sync or
    /// retire) are delivered first, with their messageIds; when they cannot be, nothing new is
    /// written. Acknowledged removals leave the snapshot batch by batch, so an interrupted retire
    /// is finished by running it again (or by the next sync, which resumes pending work).
    ///
    /// Refuses (a usage error, nothing done) a key that is still an enabled definition unless
    /// `force`; then the next sync of that definition is a first sync again and re-sends its members.
    /// Also refuses a key with nothing to retire, and destinations that are not configured or that
    /// this version cannot deliver to.
    public func retire(key: String, destinations filter: [String] = [], force: Bool = false, now: Int64) async throws
        -> RetireReport
    {
        // Destinations hold connections (HTTP clients) that must be closed however this ends.
        do {
            let report = try await retireClosingNothing(key: key, destinations: filter, force: force, now: now)
            await closeDestinations()
            return report
        } catch {
            await closeDestinations()
            throw error
        }
    }

    private func retireClosingNothing(key: String, destinations filter: [String], force: Bool, now: Int64) async throws
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
        let targets = try retireTargets(key: key).filter { filter.isEmpty || filter.contains($0) }
        guard !targets.isEmpty else {
            let orphans = try state.orphans(known: engine.definitions.knownPairs()).map { "\($0.key) → \($0.destination)" }
            let known = orphans.isEmpty ? "there are no orphaned snapshots" : "orphaned: " + orphans.joined(separator: ", ")
            let scope = filter.isEmpty ? "" : " for " + filter.joined(separator: ", ")
            throw AudienceSyncError(.usage, "nothing to retire: no snapshot of '\(key)'\(scope) (\(known))")
        }
        var resolved: [(name: String, configuration: DestinationConfiguration, destination: any Destination)] = []
        for name in targets {
            guard let destinationConfiguration = configuration.destination(named: name) else {
                throw AudienceSyncError(
                    .usage,
                    "cannot retire '\(key)' from \(name): no destination is named '\(name)' in the configuration any more "
                        + "(add it back to send the removals, or leave it out with --destination)")
            }
            guard let destination = try destination(for: destinationConfiguration) else {
                throw AudienceSyncError(
                    .usage,
                    "cannot retire '\(key)' from \(name): destination type \(destinationConfiguration.kind.rawValue) "
                        + "is not supported yet (leave it out with --destination)")
            }
            resolved.append((name, destinationConfiguration, destination))
        }
        let kind = try retiredKind(key: key)

        var report = RetireReport(key: key, now: now)
        for target in resolved {
            var item = RetireReport.Destination(destination: target.name)
            defer { report.destinations.append(item) }
            // Finish what an interrupted run of this pair left pending, with the same messageIds.
            let earlier = try await deliver(key: key, destinationName: target.name, to: target.destination)
            item.resumed = earlier.delivered
            item.failed = earlier.failed
            try finishInterruptedRuns(key: key, destination: target.name)
            guard earlier.pending == 0 else {
                item.pending = earlier.pending
                report.warnings.append("\(key) → \(target.name): earlier messages are still pending; nothing retired")
                continue
            }
            let started = clock()
            if let runId = try writeRemovals(key: key, kind: kind, destination: target.configuration, now: now) {
                let outcome = try await deliver(key: key, destinationName: target.name, to: target.destination)
                item.sent = outcome.delivered
                item.failed += outcome.failed
                item.pending = outcome.pending
                try finishRun(runId, durationMilliseconds: clock() - started)
            }
            item.dropped = try dropIfRetired(key: key, destination: target.name)
            logger.info(
                "retired pair",
                metadata: [
                    "key": "\(key)", "destination": "\(target.name)", "sent": "\(item.sent)", "failed": "\(item.failed)",
                    "pending": "\(item.pending)", "resumed": "\(item.resumed)", "dropped": "\(item.dropped)",
                ])
        }
        return report
    }

    /// The destinations where `key` has a snapshot row, pending outbox work or a sync record.
    private func retireTargets(key: String) throws -> [String] {
        try database.prepare(
            """
            SELECT destination FROM snapshots WHERE key = ?1
            UNION SELECT o.destination FROM outbox o WHERE o.key = ?1 AND o.state = 'pending'
                AND o.id > \(SyncState.mark(key: "o.key", destination: "o.destination"))
            UNION SELECT destination FROM pairs WHERE key = ?1
            ORDER BY 1
            """
        ).rows([.text(key)]).compactMap { $0[0].string }
    }

    /// Whether `key` was an audience or a computed trait: its definition's kind when a file still
    /// defines it; else the class of the last message sent for it; else, with no message left,
    /// an audience when every snapshot value is `true` (an audience snapshot keeps only those).
    private func retiredKind(key: String) throws -> Definition.Kind {
        if let definition = (engine.definitions.definitions + engine.definitions.disabled).first(where: { $0.key == key }) {
            return definition.kind
        }
        if let text = try database.prepare("SELECT m.message FROM outbox o JOIN outbox_messages m ON m.id = o.id WHERE o.key = ?1 ORDER BY o.id DESC LIMIT 1")
            .scalar([.text(key)])?.string,
            let computationClass = (try? JSONValue.parse(text))?["context"]?["personas"]?["computation_class"]?.stringValue
        {
            return computationClass == "trait" ? .computedTrait : .audience
        }
        let other = try database.prepare("SELECT 1 FROM snapshots WHERE key = ?1 AND value <> 'true' LIMIT 1")
            .scalar([.text(key)])
        return other == nil ? .audience : .computedTrait
    }

    /// Writes a run and a removal for every user of the pair's snapshot to the outbox, in one
    /// transaction; nil when the snapshot is empty.
    private func writeRemovals(key: String, kind: Definition.Kind, destination: DestinationConfiguration, now: Int64)
        throws -> Int64?
    {
        let gone = kind == .audience ? "false" : "null"
        return try database.inTransaction(.immediate) {
            let pairValues: [SQLiteValue] = [.text(key), .text(destination.name)]
            guard
                try database.prepare("SELECT 1 FROM snapshots WHERE key = ?1 AND destination = ?2 LIMIT 1")
                    .scalar(pairValues) != nil
            else { return nil }
            try database.prepare("INSERT INTO runs (started_at, key, destination, first_sync) VALUES (?1, ?2, ?3, 0)")
                .execute([.integer(now)] + pairValues)
            let runId = database.lastInsertRowID
            let insert = try database.prepare(
                """
                INSERT INTO outbox (run_id, key, destination, user_id, value, removes, message_id, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7)
                """, persistent: true)
            let insertMessage = try database.prepare(
                "INSERT INTO outbox_messages (id, message) VALUES (?1, ?2)", persistent: true)
            let users = try database.prepare(
                "SELECT user_id FROM snapshots WHERE key = ?1 AND destination = ?2 ORDER BY user_id")
            let template = SyncMessage.Template(
                key: key, kind: kind, sendAs: destination.sendAs, spaceID: configuration.spaceID, now: now)
            let messageIDs = SyncMessage.MessageIDs(key: key, destination: destination.name, runId: runId)
            try users.forEachRow(pairValues) { row in
                guard let userId = row.text(0) else { return }
                let messageId = messageIDs.id(userId: userId, value: gone)
                let body = template.text(
                    userId: userId, value: kind == .audience ? .bool(false) : .null, messageId: messageId)
                try insert.execute([
                    .integer(runId), .text(key), .text(destination.name), .text(userId), .text(gone),
                    .text(messageId), .integer(now),
                ])
                try insertMessage.execute([.integer(database.lastInsertRowID), .text(body)])
            }
            return runId
        }
    }

    /// Drops the pair's record when its snapshot is empty and nothing is pending, so that a
    /// definition that takes the key again starts with a first sync. Runs and outbox rows stay,
    /// as the history of what was sent.
    private func dropIfRetired(key: String, destination: String) throws -> Bool {
        try database.inTransaction(.immediate) {
            let values: [SQLiteValue] = [.text(key), .text(destination)]
            let left = try state.count(
                """
                SELECT (SELECT count(*) FROM snapshots WHERE key = ?1 AND destination = ?2)
                     + (SELECT count(*) FROM outbox WHERE \(SyncState.pendingOfBoundPair))
                """, values)
            guard left == 0 else { return false }
            try database.prepare("DELETE FROM pairs WHERE key = ?1 AND destination = ?2").execute(values)
            return true
        }
    }
}
