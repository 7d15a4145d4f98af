import Foundation
import Logging

/// What one `sync` did (SPEC §10).
public struct SyncReport: Sendable {
    public struct Pair: Sendable, Equatable {
        public var key: String
        public var destination: String
        public var due = false
        public var firstSync = false
        /// Messages of this run acknowledged by the destination.
        public var sent = 0
        /// Messages refused for good (this run's or resumed ones).
        public var failed = 0
        /// Messages of earlier, interrupted runs delivered by this one.
        public var resumed = 0
        /// Messages left pending because delivery stopped (the next run sends them).
        public var pending = 0
        /// Messages of this run that can never be sent (also counted in `failed`); SPEC §7.
        public var invalid = 0
        /// Why the pair was not synced (an unsupported destination type).
        public var skipped: String?
    }

    public struct Orphan: Sendable, Equatable {
        public var key: String
        public var destination: String
        public var synced: Int
    }

    public var now: Int64
    public var pairs: [Pair] = []
    public var orphaned: [Orphan] = []
    /// Things the user should see on standard error.
    public var warnings: [String] = []

    /// SPEC §8: 1 when a delivery failed or was left pending, else 0.
    public var exitStatus: Int32 { pairs.contains { $0.failed > 0 || $0.pending > 0 } ? 1 : 0 }

    public var json: JSONValue {
        .object([
            "now": .string(Timestamp.format(now)),
            "pairs": .array(
                pairs.map { pair in
                    var members: [JSONValue.Member] = [
                        .init("key", .string(pair.key)), .init("destination", .string(pair.destination)),
                        .init("due", .bool(pair.due)), .init("first_sync", .bool(pair.firstSync)),
                        .init("sent", .int(pair.sent)), .init("failed", .int(pair.failed)),
                        .init("resumed", .int(pair.resumed)), .init("pending", .int(pair.pending)),
                        .init("invalid", .int(pair.invalid)),
                    ]
                    if let skipped = pair.skipped { members.append(.init("skipped", .string(skipped))) }
                    return .object(members)
                }),
            "orphaned": .array(
                orphaned.map {
                    .object(["key": .string($0.key), "destination": .string($0.destination), "synced": .int($0.synced)])
                }),
        ])
    }
}

/// Runs a sync (SPEC §6): resumes pending outbox work, then for each due pair diffs, writes the
/// outbox in one transaction, delivers it in batches and records the run.
///
/// The caller holds the `SyncLock` and owns the store's connection.
public final class Syncer {
    public let engine: MembershipEngine
    public let configuration: Configuration
    let logger: Logger
    /// Returns the destination for a configuration, or nil when this version cannot deliver to it.
    let makeDestination: (DestinationConfiguration) throws -> (any Destination)?
    /// Messages per delivered batch (and per snapshot transaction); nil leaves it to the
    /// destination (`Destination.preferredBatchSize`, else 500).
    public var batchSize: Int?
    /// Wall-clock milliseconds, for run durations (tests pass `now` for everything else).
    var clock: () -> Int64 = Timestamp.now
    /// Called before a pair's delivery and after each of its batches (for a progress line on a terminal).
    public var progress: ((DeliveryProgress) -> Void)?

    var database: Database { engine.store.database }
    var state: SyncState { SyncState(database: database) }
    /// The destinations of this run, by name (nil: cannot be delivered to).
    private var destinations: [String: (any Destination)?] = [:]

    public init(
        engine: MembershipEngine, configuration: Configuration, logger: Logger, batchSize: Int? = nil,
        makeDestination: ((DestinationConfiguration) throws -> (any Destination)?)? = nil
    ) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.batchSize = batchSize.map { max(1, $0) }
        self.makeDestination = makeDestination ?? { try Syncer.standardDestination($0, logger: logger) }
    }

    /// The destination for a configuration: `file`, `segment` or `sprig`. An HTTP destination's
    /// secret is read here, once per run; a missing one is a configuration error that names the
    /// destination and where the secret was looked for, never a value.
    public static func standardDestination(
        _ configuration: DestinationConfiguration, logger: Logger, hooks: HTTPDeliveryHooks = .live,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (any Destination)? {
        switch configuration.kind {
        case .file:
            guard let path = configuration.path else { return nil }
            return FileDestination(path: path)
        case .segment:
            let writeKey = try resolveSecret(of: configuration, environment: environment)
            return try SegmentDestination(configuration: configuration, writeKey: writeKey, hooks: hooks, logger: logger)
        case .sprig:
            let apiKey = try resolveSecret(of: configuration, environment: environment)
            return try SprigDestination(configuration: configuration, apiKey: apiKey, hooks: hooks, logger: logger)
        }
    }

    private static func resolveSecret(of configuration: DestinationConfiguration, environment: [String: String]) throws
        -> String
    {
        let field = configuration.kind.secretField ?? "secret"
        guard let secret = configuration.secret else {
            throw AudienceSyncError(.configuration, "destination '\(configuration.name)' has no \(field)")
        }
        do {
            return try secret.resolve(environment: environment)
        } catch var error as AudienceSyncError {
            error.message = "destination '\(configuration.name)': \(field): \(error.message)"
            throw error
        }
    }

    /// Runs a sync. Every destination the run may use is created first, so a missing secret stops
    /// the run (a configuration error) before anything is sent; all are closed before it returns.
    public func sync(_ selection: SyncSelection, now: Int64) async throws -> SyncReport {
        let selected = try selection.pairs(definitions: engine.definitions, configuration: configuration)
        do {
            for name in try Set(selected.map(\.destination.name) + state.pendingPairs().map(\.destination)).sorted() {
                if let destinationConfiguration = configuration.destination(named: name) {
                    _ = try destination(for: destinationConfiguration)
                }
            }
            let report = try await run(selected, selection: selection, now: now)
            await closeDestinations()
            return report
        } catch {
            await closeDestinations()
            throw error
        }
    }

    func closeDestinations() async {
        for (_, destination) in destinations { await destination?.close() }
        destinations = [:]
    }

    private func run(_ selected: [SyncPair], selection: SyncSelection, now: Int64) async throws -> SyncReport {
        var report = SyncReport(now: now)
        var entries: [PairName: SyncReport.Pair] = [:]
        var order: [PairName] = []
        func entry(_ name: PairName) -> SyncReport.Pair {
            entries[name] ?? SyncReport.Pair(key: name.key, destination: name.destination)
        }

        try pruneDeliveredMessages(now: now)

        // Step 2: finish what an interrupted run left pending, whatever the filters.
        for pending in try state.pendingPairs() {
            let name = PairName(key: pending.key, destination: pending.destination)
            guard let destinationConfiguration = configuration.destination(named: pending.destination),
                let destination = try destination(for: destinationConfiguration)
            else {
                report.warnings.append(
                    "\(pending.key) → \(pending.destination): pending messages stay in the outbox: the destination is not configured or not supported yet"
                )
                continue
            }
            let outcome = try await deliver(key: pending.key, destinationName: pending.destination, to: destination)
            var item = entry(name)
            item.resumed += outcome.delivered
            item.failed += outcome.failed
            item.pending += outcome.pending
            entries[name] = item
            if !order.contains(name) { order.append(name) }
            try finishInterruptedRuns(key: pending.key, destination: pending.destination)
            logger.info(
                "resumed pending messages",
                metadata: [
                    "key": "\(pending.key)", "destination": "\(pending.destination)", "sent": "\(outcome.delivered)",
                    "failed": "\(outcome.failed)", "pending": "\(outcome.pending)",
                ])
        }

        // Steps 3–6 for each selected pair.
        let differ = try PairDiffer(engine: engine)
        for pair in selected {
            let name = PairName(key: pair.key, destination: pair.destination.name)
            if !order.contains(name) { order.append(name) }
            var item = entry(name)
            let lastSyncedAt = try state.lastSyncedAt(key: pair.key, destination: pair.destination.name)
            item.due = selection.force || pair.isDue(lastSyncedAt: lastSyncedAt, now: now)
            item.firstSync = try state.isFirstSync(key: pair.key, destination: pair.destination.name)
            defer { entries[name] = item }
            guard item.due else { continue }
            guard pair.unsupportedReason == nil, let destination = try destination(for: pair.destination) else {
                let reason = pair.unsupportedReason ?? "destination \(pair.destination.name) cannot be delivered to"
                item.skipped = reason
                report.warnings.append("\(pair.key) → \(pair.destination.name): skipped: \(reason)")
                continue
            }
            guard item.pending == 0 else {
                // Its earlier work could not be delivered just now; adding more would only queue behind it.
                report.warnings.append("\(pair.key) → \(pair.destination.name): skipped: earlier messages are still pending")
                continue
            }
            let started = clock()
            let phases = ContinuousClock.now
            let (runId, invalid) = try writeOutbox(pair, differ: differ, firstSync: item.firstSync, now: now)
            let outboxWritten = ContinuousClock.now
            item.invalid += invalid.count
            report.warnings += Self.invalidWarnings(invalid, key: pair.key, destination: pair.destination.name)
            let outcome = try await deliver(key: pair.key, destinationName: pair.destination.name, to: destination)
            logger.debug(
                "pair timings",
                metadata: [
                    "key": "\(pair.key)", "destination": "\(pair.destination.name)",
                    "diff_and_outbox_s": "\(Self.seconds(outboxWritten - phases))",
                    "delivery_s": "\(Self.seconds(ContinuousClock.now - outboxWritten))",
                ])
            item.sent += outcome.delivered
            item.failed += outcome.failed + invalid.count
            item.pending += outcome.pending
            try finishRun(runId, durationMilliseconds: clock() - started)
            logger.info(
                "synced pair",
                metadata: [
                    "key": "\(pair.key)", "destination": "\(pair.destination.name)", "sent": "\(outcome.delivered)",
                    "failed": "\(outcome.failed + invalid.count)", "invalid": "\(invalid.count)",
                    "pending": "\(outcome.pending)",
                ])
        }
        report.pairs = order.map { entry($0) }
        report.orphaned = try state.orphans(known: engine.definitions.knownPairs()).map {
            SyncReport.Orphan(key: $0.key, destination: $0.destination, synced: $0.count)
        }
        for orphan in report.orphaned {
            report.warnings.append(
                "\(orphan.key) → \(orphan.destination): orphaned snapshot of \(orphan.synced) users (no definition has this key any more): run 'audience-sync retire \(orphan.key)' to remove its users from \(orphan.destination) and drop it"
            )
        }
        return report
    }

    /// Seconds of `duration`, to the millisecond, for the debug log's timings.
    static func seconds(_ duration: Swift.Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        let exact = Double(seconds) + Double(attoseconds) / 1e18
        return (exact * 1000).rounded() / 1000
    }

    /// How long delivered outbox rows are kept, by the `now` of the run that wrote them: a week of
    /// what was sent, for questions about it, without the store growing by every message forever.
    public static let deliveredRetentionMilliseconds: Int64 = 7 * 24 * 3_600_000

    /// Deletes the delivered outbox rows (and message texts) of runs that started more than
    /// `deliveredRetentionMilliseconds` before `now`. Pending and failed rows always stay, and so
    /// does the row with the largest id, so that ids keep growing (a pair's delivery mark must
    /// never cover a row written after it). It runs before anything is sent, so what this sync
    /// delivers is there to read after it; it finds the rows through `runs` and the outbox's run
    /// index, never by scanning the outbox.
    func pruneDeliveredMessages(now: Int64) throws {
        let cutoff: [SQLiteValue] = [.integer(now - Self.deliveredRetentionMilliseconds)]
        // A run's rows are all of its pair, so the pair's mark is looked up once per run.
        let delivered = """
            SELECT o.id FROM runs r JOIN outbox o ON o.run_id = r.id
            WHERE r.started_at < ?1 AND o.id < (SELECT max(id) FROM outbox) AND (
                o.state = 'delivered'
                OR (o.state = 'pending' AND o.id <= \(SyncState.mark(key: "r.key", destination: "r.destination")))
            )
            """
        try database.inTransaction(.immediate) {
            try database.prepare("DELETE FROM outbox_messages WHERE id IN (\(delivered))").execute(cutoff)
            try database.prepare("DELETE FROM outbox WHERE id IN (\(delivered))").execute(cutoff)
        }
    }

    func destination(for configuration: DestinationConfiguration) throws -> (any Destination)? {
        if let existing = destinations[configuration.name] { return existing }
        let made = try makeDestination(configuration)
        destinations[configuration.name] = made
        return made
    }

    /// Diffs `pair` and writes its run row and every change to the outbox in one transaction.
    /// A message that can never be sent (`SyncMessage.invalidReason`) is written as failed, with
    /// its reason, and returned: it is never delivered nor applied, so the next due sync diffs it again.
    private func writeOutbox(_ pair: SyncPair, differ: PairDiffer, firstSync: Bool, now: Int64) throws
        -> (runId: Int64, invalid: [InvalidMessage])
    {
        let started = ContinuousClock.now
        _ = try differ.load(pair, now: now)
        logger.debug(
            "pair diffed",
            metadata: [
                "key": "\(pair.key)", "destination": "\(pair.destination.name)",
                "seconds": "\(Self.seconds(ContinuousClock.now - started))",
            ])
        return try database.inTransaction(.immediate) {
            try database.prepare("INSERT INTO runs (started_at, key, destination, first_sync) VALUES (?1, ?2, ?3, ?4)")
                .execute([.integer(now), .text(pair.key), .text(pair.destination.name), .integer(firstSync ? 1 : 0)])
            let runId = database.lastInsertRowID
            let template = SyncMessage.Template(
                definition: pair.definition, sendAs: pair.destination.sendAs, spaceID: configuration.spaceID, now: now)
            let messageIDs = SyncMessage.MessageIDs(key: pair.key, destination: pair.destination.name, runId: runId)
            // Two set-based statements, the messageIds and texts computed by SQL functions of this
            // run: no statement per change, no row through Swift but the values the functions need.
            try database.defineFunction("audience_sync_message_id", arguments: 2) { call in
                guard let userId = call.text(0), let value = call.text(1) else {
                    return call.fail("audience_sync_message_id: a change without user id or value")
                }
                call.result(text: messageIDs.id(userId: userId, value: value))
            }
            var body: [UInt8] = []
            var invalid: [(id: Int64, message: InvalidMessage)] = []
            try database.defineFunction("audience_sync_message", arguments: 4) { call in
                guard let userId = call.text(1), let text = call.text(2), let messageId = call.text(3) else {
                    return call.fail("audience_sync_message: an outbox row without user id, value or messageId")
                }
                let value: JSONValue
                do {
                    value = try Self.value(of: text)
                } catch {
                    return call.fail("audience_sync_message: the value of \(userId) is not JSON: \(error)")
                }
                template.write(userId: userId, value: value, messageId: messageId, into: &body)
                if let reason = SyncMessage.invalidReason(size: body.count) {
                    invalid.append((call.int64(0), InvalidMessage(userId: userId, reason: reason)))
                }
                body.withUnsafeBytes { call.result(text: $0) }
            }
            try database.prepare(
                """
                INSERT INTO outbox (
                    run_id, key, destination, user_id, value, removes, message_id, state, reason, created_at, updated_at
                )
                SELECT ?1, ?2, ?3, user_id, value, removes, audience_sync_message_id(user_id, value), 'pending', NULL, ?4, ?4
                FROM temp.sync_changes ORDER BY seq
                """
            ).execute([.integer(runId), .text(pair.key), .text(pair.destination.name), .integer(now)])
            try database.prepare(
                """
                INSERT INTO outbox_messages (id, message)
                SELECT id, audience_sync_message(id, user_id, value, message_id) FROM outbox WHERE run_id = ?1 ORDER BY id
                """
            ).execute([.integer(runId)])
            // A message that can never be sent is written as failed, with its reason.
            let markInvalid = try database.prepare("UPDATE outbox SET state = 'failed', reason = ?2 WHERE id = ?1")
            for (id, message) in invalid {
                try markInvalid.execute([.integer(id), .text(message.reason)])
            }
            return (runId, invalid.map(\.message))
        }
    }

    /// The warnings for a pair's messages that can never be sent: the first few users and reasons.
    static func invalidWarnings(_ invalid: [InvalidMessage], key: String, destination: String) -> [String] {
        guard !invalid.isEmpty else { return [] }
        var lines = invalid.prefix(3).map { "\(key) → \(destination): not sent to \($0.userId): \($0.reason)" }
        if invalid.count > 3 { lines.append("\(key) → \(destination): \(invalid.count - 3) more messages not sent") }
        return lines
    }

    /// The message of `change` as JSON text, as a sync with run `runId` writes it to the outbox;
    /// `template` is the pair's (`SyncMessage.Template(definition:sendAs:spaceID:now:)`).
    static func message(for change: PairChange, of pair: SyncPair, runId: Int64, template: SyncMessage.Template) throws
        -> (messageId: String, body: String)
    {
        let messageId = SyncMessage.messageID(
            key: pair.key, destination: pair.destination.name, userId: change.userId, value: change.value, runId: runId)
        return (messageId, template.text(userId: change.userId, value: try value(of: change), messageId: messageId))
    }

    /// The value a change sends (its JSON text parsed; the common ones without parsing).
    static func value(of change: PairChange) throws -> JSONValue {
        try value(of: change.value)
    }

    /// A value's JSON text parsed (the common ones without parsing).
    static func value(of text: String) throws -> JSONValue {
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: return try JSONValue.parse(text)
        }
    }

    /// Delivers a pair's pending outbox messages in batches. Each batch's results are recorded,
    /// and acknowledged changes applied to the snapshot, in one transaction. A destination that
    /// throws, or leaves messages pending, stops the delivery: the rest stays pending for the next run.
    func deliver(key: String, destinationName: String, to destination: any Destination) async throws
        -> (delivered: Int, failed: Int, pending: Int)
    {
        let size = max(1, batchSize ?? destination.preferredBatchSize ?? 500)
        var delivered = 0
        var failed = 0
        let total = try state.pendingCount(key: key, destination: destinationName)
        progress?(DeliveryProgress(key: key, destination: destinationName, done: 0, total: total))
        let markDelivered = try database.prepare(
            "UPDATE outbox SET state = 'delivered', updated_at = ?2 WHERE id = ?1", persistent: true)
        let markFailed = try database.prepare(
            "UPDATE outbox SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1", persistent: true)
        let apply = try database.prepare(
            """
            INSERT INTO snapshots (key, destination, user_id, value)
            SELECT key, destination, user_id, value FROM outbox WHERE id = ?1 AND removes = 0
            ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
            """, persistent: true)
        let remove = try database.prepare(
            """
            DELETE FROM snapshots WHERE (key, destination, user_id) IN
                (SELECT key, destination, user_id FROM outbox WHERE id = ?1 AND removes = 1)
            """, persistent: true)
        // The same for a whole batch of the pair's pending rows with ids in (?3, ?4]: the snapshot
        // written set-based, and the rows marked delivered by moving the pair's mark to ?4 rather
        // than by rewriting each of them (see `outbox_marks`).
        let inRange = "key = ?1 AND destination = ?2 AND state = 'pending' AND id > max(?3, \(SyncState.markOfBoundPair)) AND id <= ?4"
        let applyRange = try database.prepare(
            """
            INSERT INTO snapshots (key, destination, user_id, value)
            SELECT key, destination, user_id, value FROM outbox WHERE \(inRange) AND removes = 0
            ON CONFLICT (key, destination, user_id) DO UPDATE SET value = excluded.value
            """, persistent: true)
        let removeRange = try database.prepare(
            """
            DELETE FROM snapshots WHERE key = ?1 AND destination = ?2 AND user_id IN (
                SELECT user_id FROM outbox WHERE \(inRange) AND removes = 1
            )
            """, persistent: true)
        let countRange = try database.prepare("SELECT count(*) FROM outbox WHERE \(inRange)", persistent: true)
        let moveMark = try database.prepare(
            """
            INSERT INTO outbox_marks (key, destination, through_id) VALUES (?1, ?2, ?3)
            ON CONFLICT (key, destination) DO UPDATE SET through_id = max(through_id, excluded.through_id)
            """, persistent: true)
        // One batch is always on its way while the last answer is recorded: once a batch is
        // acknowledged whole, the next is read and handed to the destination before the store
        // records the first, so that writing to the destination and writing the store overlap.
        // Batches still reach the destination one after another, in outbox order; a crash while
        // the next batch is out leaves both pending, to be sent again with the same messageIds.
        var answer: Task<[DeliveryResult], any Error>?
        /// Reads the pair's pending messages after `id` and hands them to the destination.
        func sendBatch(after id: Int64) throws -> [OutboundMessage] {
            let batch = try state.pendingMessages(key: key, destination: destinationName, after: id, limit: size)
            if !batch.isEmpty { answer = Self.send(batch, to: destination) }
            return batch
        }
        var batch = try sendBatch(after: 0)
        var batchStart: Int64 = 0
        while let sent = answer, let last = batch.last {
            answer = nil
            let results: [DeliveryResult]
            do {
                results = try await sent.value
            } catch {
                logger.error(
                    "delivery interrupted; the messages stay pending",
                    metadata: ["key": "\(key)", "destination": "\(destinationName)", "error": "\(error)"])
                break
            }
            guard results.count == batch.count else {
                throw AudienceSyncError(
                    .delivery, "destination \(destinationName) answered \(results.count) results for \(batch.count) messages")
            }
            let whole = results.allSatisfy({ $0 == .acknowledged }) && Set(batch.map(\.userId)).count == batch.count
            var next = whole ? try sendBatch(after: last.id) : []
            let updatedAt = clock()
            var leftPending: String?
            do {
                if whole {
                    // The common case, set-based: the batch is exactly the pair's pending rows in
                    // (after, last], each user once, so the order of the snapshot writes does not
                    // matter. Every earlier row of the pair is resolved (delivery goes in id order
                    // and stops at the first batch not resolved whole), so the mark may move to
                    // the batch's last id.
                    let range: [SQLiteValue] = [
                        .text(key), .text(destinationName), .integer(batchStart), .integer(last.id),
                    ]
                    try database.inTransaction(.immediate) {
                        let marked = Int(try countRange.scalar(range)?.int64 ?? 0)
                        guard marked == batch.count else {
                            throw AudienceSyncError(
                                .delivery,
                                "outbox of \(key) → \(destinationName) changed during delivery (\(marked) of \(batch.count) rows)")
                        }
                        try applyRange.execute(range)
                        try removeRange.execute(range)
                        try moveMark.execute([.text(key), .text(destinationName), .integer(last.id)])
                    }
                    delivered += batch.count
                } else {
                    try database.inTransaction(.immediate) {
                        for (message, result) in zip(batch, results) {
                            switch result {
                            case .acknowledged:
                                try markDelivered.execute([.integer(message.id), .integer(updatedAt)])
                                try apply.execute([.integer(message.id)])
                                try remove.execute([.integer(message.id)])
                                delivered += 1
                            case .failed(let reason):
                                try markFailed.execute([.integer(message.id), .text(reason), .integer(updatedAt)])
                                failed += 1
                            case .pending(let reason):
                                leftPending = leftPending ?? reason
                            }
                        }
                    }
                }
            } catch {
                // The next batch may be on its way: let it land before giving up (it stays pending).
                _ = try? await answer?.value
                throw error
            }
            progress?(DeliveryProgress(key: key, destination: destinationName, done: delivered + failed, total: total))
            if let leftPending {
                logger.error(
                    "delivery stopped; the messages not acknowledged stay pending for the next run",
                    metadata: ["key": "\(key)", "destination": "\(destinationName)", "reason": "\(leftPending)"])
                break
            }
            if !whole { next = try sendBatch(after: last.id) }
            batchStart = last.id
            batch = next
        }
        let pending = try state.pendingCount(key: key, destination: destinationName)
        return (delivered, failed, pending)
    }

    /// Hands `batch` to `destination` on a task of its own. The destination is used by one
    /// delivery at a time: the syncer awaits each answer before it sends the next batch.
    private static func send(_ batch: [OutboundMessage], to destination: any Destination)
        -> Task<[DeliveryResult], any Error>
    {
        let box = DestinationBox(destination: destination)
        return Task { try await box.destination.deliver(batch) }
    }

    /// Records a run's counts and outcome. A run with nothing left pending is complete: the pair's
    /// last completed sync becomes the run's start (unless a later one is already recorded).
    func finishRun(_ runId: Int64, durationMilliseconds: Int64?) throws {
        try database.inTransaction(.immediate) {
            let row = try database.prepare(
                """
                SELECT sum(o.state = 'delivered' OR (o.state = 'pending' AND o.id <= m.mark)), sum(o.state = 'failed'),
                    sum(o.state = 'pending' AND o.id > m.mark)
                FROM outbox o, (
                    SELECT \(SyncState.mark(key: "r.key", destination: "r.destination")) AS mark FROM runs r WHERE r.id = ?1
                ) m
                WHERE o.run_id = ?1
                """
            ).rows([.integer(runId)]).first ?? []
            let sent = row.first?.int64 ?? 0
            let failed = row.count > 1 ? row[1].int64 ?? 0 : 0
            let pending = row.count > 2 ? row[2].int64 ?? 0 : 0
            let outcome = pending > 0 ? "failed" : failed > 0 ? "partial" : "ok"
            try database.prepare(
                """
                UPDATE runs SET sent = ?2, failed = ?3, outcome = ?4, duration_ms = coalesce(?5, duration_ms) WHERE id = ?1
                """
            ).execute([.integer(runId), .integer(sent), .integer(failed), .text(outcome), .integer(durationMilliseconds)])
            if pending == 0 {
                try database.prepare(
                    """
                    INSERT INTO pairs (key, destination, last_synced_at)
                    SELECT key, destination, started_at FROM runs WHERE id = ?1
                    ON CONFLICT (key, destination) DO UPDATE SET last_synced_at = max(last_synced_at, excluded.last_synced_at)
                    """
                ).execute([.integer(runId)])
            }
        }
    }

    /// Finishes the records of a pair's runs that were interrupted and whose messages are now resolved.
    func finishInterruptedRuns(key: String, destination: String) throws {
        let runs = try database.prepare(
            "SELECT id FROM runs WHERE key = ?1 AND destination = ?2 AND outcome IN ('running', 'failed') ORDER BY id"
        ).rows([.text(key), .text(destination)]).compactMap { $0[0].int64 }
        for runId in runs { try finishRun(runId, durationMilliseconds: nil) }
    }
}

/// A destination carried to the task that delivers one batch; sound because a destination only
/// ever has one batch in flight (see `Syncer.send`).
private struct DestinationBox: @unchecked Sendable {
    let destination: any Destination
}
