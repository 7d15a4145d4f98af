/// The dry-run diff of SPEC §7: what a `sync --force` at the same `now` would send, computed
/// on a read-only connection (the differ's tables are temporary, in SQLite's temp database).
public struct DiffReport: Sendable {
    public struct Pair: Sendable {
        public var key: String
        public var kind: Definition.Kind
        public var destination: String
        public var firstSync: Bool
        public var due: Bool
        public var nextDueAt: Int64
        public var lastSyncedAt: Int64?
        public var counts: PairCounts
        /// Changes whose message can never be sent (`SyncMessage.invalidReason`): `sync` records
        /// them as failed without sending them. They are counted in entered/exited/changed too.
        public var invalid = 0
        /// The first of those, with their reasons (at most the sample size).
        public var invalidSample: [InvalidMessage] = []
        public var sample: [PairChange.Kind: [String]]
        /// Why `sync` would skip the pair (an unsupported destination type).
        public var skipped: String?
    }

    public var now: Int64
    public var pairs: [Pair] = []
    /// How many messages `sync --force` would send: pending outbox work and each supported pair's
    /// changes, less the invalid ones.
    public var messageCount = 0
    /// Those messages, as compact JSON text, in sending order, when the dry run was asked to
    /// collect them (`DryRunMessages.collect`).
    public var messages: [String] = []

    public var json: JSONValue {
        .object([
            "now": .string(Timestamp.format(now)),
            "pairs": .array(
                pairs.map { pair in
                    var members: [JSONValue.Member] = [
                        .init("key", .string(pair.key)), .init("kind", .string(pair.kind.rawValue)),
                        .init("destination", .string(pair.destination)), .init("first_sync", .bool(pair.firstSync)),
                        .init("due", .bool(pair.due)), .init("next_due_at", .string(Timestamp.format(pair.nextDueAt))),
                        .init("last_synced_at", .string(pair.lastSyncedAt.map(Timestamp.format))),
                        .init("members", .int(pair.counts.members)), .init("synced", .int(pair.counts.synced)),
                        .init("entered", .int(pair.counts.entered)), .init("exited", .int(pair.counts.exited)),
                        .init("changed", .int(pair.counts.changed)), .init("unchanged", .int(pair.counts.unchanged)),
                        .init("invalid", .int(pair.invalid)),
                        .init(
                            "invalid_sample",
                            .array(
                                pair.invalidSample.map {
                                    .object(["user_id": .string($0.userId), "reason": .string($0.reason)])
                                })),
                        .init("pending", .int(pair.counts.pending)),
                        .init(
                            "sample",
                            .object([
                                "entered": .array((pair.sample[.entered] ?? []).map(JSONValue.string)),
                                "exited": .array((pair.sample[.exited] ?? []).map(JSONValue.string)),
                                "changed": .array((pair.sample[.changed] ?? []).map(JSONValue.string)),
                            ])),
                    ]
                    if let skipped = pair.skipped { members.append(.init("skipped", .string(skipped))) }
                    return .object(members)
                }),
        ])
    }

    /// A table for people: one line per pair.
    public var text: String {
        var lines = ["diff at \(Timestamp.format(now))"]
        let header = [
            "key", "destination", "first", "due", "members", "synced", "enter", "exit", "change", "same", "invalid",
            "pending",
        ]
        var rows = [header]
        for pair in pairs {
            rows.append([
                pair.key, pair.destination, pair.firstSync ? "yes" : "no",
                pair.skipped != nil ? "skipped" : pair.due ? "yes" : "no", "\(pair.counts.members)",
                "\(pair.counts.synced)", "\(pair.counts.entered)", "\(pair.counts.exited)", "\(pair.counts.changed)",
                "\(pair.counts.unchanged)", "\(pair.invalid)", "\(pair.counts.pending)",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(
                row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingTrailingSpaces())
        }
        for pair in pairs {
            if let skipped = pair.skipped { lines.append("\(pair.key) → \(pair.destination): \(skipped)") }
            for invalid in pair.invalidSample {
                lines.append("\(pair.key) → \(pair.destination): not sent to \(invalid.userId): \(invalid.reason)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}

/// What a dry run does with the messages it works out.
public enum DryRunMessages {
    /// Keeps them in `DiffReport.messages` (small stores, tests).
    case collect
    /// Counts them only: memory stays flat however many there are.
    case count
    /// Hands each to a function as it is made, in sending order (`diff --format ndjson`).
    case stream((String) throws -> Void)
}

extension Syncer {
    /// What `sync --force` with the same selection would do at `now`, changing nothing.
    /// The engine's store may be read-only.
    public static func dryRun(
        engine: MembershipEngine, configuration: Configuration, selection: SyncSelection, now: Int64,
        sampleSize: Int = 10, messages: DryRunMessages = .collect
    ) throws -> DiffReport {
        let database = engine.store.database
        let state = SyncState(database: database)
        let pairs = try selection.pairs(definitions: engine.definitions, configuration: configuration)
        var report = DiffReport(now: now)
        func emit(_ body: String) throws {
            report.messageCount += 1
            switch messages {
            case .collect: report.messages.append(body)
            case .count: break
            case .stream(let write): try write(body)
            }
        }

        // Pending work a sync resumes first: that of every configured destination (a sync leaves
        // the work of a destination no longer configured in the outbox).
        for pending in try state.pendingPairs() {
            guard configuration.destination(named: pending.destination) != nil else { continue }
            var lastId: Int64 = 0
            while true {
                let batch = try state.pendingMessages(
                    key: pending.key, destination: pending.destination, after: lastId, limit: 1000)
                guard let last = batch.last else { break }
                lastId = last.id
                for message in batch { try emit(message.body) }
            }
        }

        let differ = try PairDiffer(engine: engine)
        var runId = try state.nextRunId()
        for pair in pairs {
            let destination = pair.destination.name
            let lastSyncedAt = try state.lastSyncedAt(key: pair.key, destination: destination)
            let counts = try differ.load(pair, now: now)
            var item = DiffReport.Pair(
                key: pair.key, kind: pair.definition.kind, destination: destination,
                firstSync: try state.isFirstSync(key: pair.key, destination: destination),
                due: pair.isDue(lastSyncedAt: lastSyncedAt, now: now),
                nextDueAt: pair.nextDueAt(lastSyncedAt: lastSyncedAt, now: now), lastSyncedAt: lastSyncedAt,
                counts: counts, sample: try differ.sample(pair, limit: sampleSize), skipped: pair.unsupportedReason)
            if item.skipped == nil {
                // `sync` skips a pair whose earlier messages could not be delivered; here they are
                // assumed delivered, as a sync that gets that far delivers them first.
                let thisRun = runId
                let template = SyncMessage.Template(
                    definition: pair.definition, sendAs: pair.destination.sendAs, spaceID: configuration.spaceID, now: now)
                let messageIdLength = SyncMessage.messageIDLength(runId: thisRun)
                try differ.forEachChange(pair) { change in
                    // Counting needs only each message's size, which needs neither its hash nor its text.
                    var body: String?
                    let size: Int
                    if case .count = messages {
                        size = template.textLength(
                            userId: change.userId, value: try Syncer.value(of: change), messageIdLength: messageIdLength)
                    } else {
                        body = try Syncer.message(for: change, of: pair, runId: thisRun, template: template).body
                        size = body?.utf8.count ?? 0
                    }
                    if let reason = SyncMessage.invalidReason(size: size) {
                        item.invalid += 1
                        if item.invalidSample.count < sampleSize {
                            item.invalidSample.append(InvalidMessage(userId: change.userId, reason: reason))
                        }
                    } else if let body {
                        try emit(body)
                    } else {
                        report.messageCount += 1
                    }
                }
                runId += 1
            } else {
                item.due = false
            }
            report.pairs.append(item)
        }
        return report
    }
}
