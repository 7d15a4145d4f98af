import Foundation
import Logging

/// Runs a sync (SPEC §6): finishes pending outbox work, then for each due pair diffs its state at
/// `now` against its snapshot, writes the changes to the outbox in one transaction, delivers them
/// and records the run. The parts: the store's diff and outbox writer (`SyncStateStore`), one way
/// of making messages (`OutboxMessageMaker`), `Delivery`, `RunBookkeeping`, and the destinations
/// (`DestinationFactory`).
///
/// The caller holds the store's sync lock (`SyncLocking.withSyncLock`).
public struct Syncer {
    public let engine: MembershipEngine
    public let state: any SyncStateStore
    public let configuration: Configuration
    let logger: Logger
    let destinations: DestinationFactory
    /// Messages per delivered batch (and per snapshot transaction); nil leaves it to the
    /// destination (`Destination.preferredBatchSize`, else 500).
    public var batchSize: Int?
    /// Wall-clock milliseconds, for run durations (tests pass `now` for everything else).
    var clock: @Sendable () -> Int64 = Timestamp.now
    /// Called before a pair's delivery and after each of its batches (for a progress line on a terminal).
    public var progress: ((DeliveryProgress) -> Void)?

    public init(
        engine: MembershipEngine, state: any SyncStateStore, configuration: Configuration, logger: Logger,
        batchSize: Int? = nil, destinations: DestinationFactory? = nil
    ) {
        self.engine = engine
        self.state = state
        self.configuration = configuration
        self.logger = logger
        self.batchSize = batchSize.map { max(1, $0) }
        self.destinations = destinations ?? .standard(logger: logger)
    }

    /// A syncer of the definitions `definitions` on `store`.
    public init(
        store: any Store, definitions: DefinitionSet, configuration: Configuration, logger: Logger,
        batchSize: Int? = nil, destinations: DestinationFactory? = nil
    ) {
        self.init(
            engine: MembershipEngine(source: store, definitions: definitions), state: store,
            configuration: configuration, logger: logger, batchSize: batchSize, destinations: destinations)
    }

    var delivery: Delivery {
        Delivery(state: state, logger: logger, batchSize: batchSize, clock: clock, progress: progress)
    }

    var runs: RunBookkeeping { RunBookkeeping(state: state) }

    /// Runs a sync. Every destination the run may use is made first, so a missing secret stops
    /// the run (a configuration error) before anything is sent; all are closed before it returns.
    public func sync(_ selection: SyncSelection, now: Int64) async throws -> SyncReport {
        let selected = try selection.pairs(definitions: engine.definitions, configuration: configuration)
        let pending = try await state.pendingPairs()
        let names = selected.map(\.destination.name) + pending.map(\.destination)
        return try await destinations.withDestinations(names, configuration: configuration) { open in
            try await run(selected, pending: pending, selection: selection, destinations: open, now: now)
        }
    }

    private func run(
        _ selected: [SyncPair], pending: [PairName], selection: SyncSelection, destinations: OpenDestinations, now: Int64
    ) async throws -> SyncReport {
        var report = SyncReport(now: now)
        var entries: [PairName: SyncReport.Pair] = [:]
        var order: [PairName] = []
        func entry(_ name: PairName) -> SyncReport.Pair {
            entries[name] ?? SyncReport.Pair(key: name.key, destination: name.destination)
        }

        try await runs.pruneDeliveredMessages(now: now)

        // Step 2: finish what an interrupted run left pending, whatever the filters.
        for pair in pending {
            guard let destination = destinations[pair.destination] else {
                report.warnings.append(
                    "\(pair.key) → \(pair.destination): pending messages stay in the outbox: the destination is not configured or not supported yet"
                )
                continue
            }
            let outcome = try await delivery.deliver(pair, to: destination)
            var item = entry(pair)
            item.resumed += outcome.delivered
            item.failed += outcome.failed
            item.pending += outcome.pending
            entries[pair] = item
            if !order.contains(pair) { order.append(pair) }
            try await runs.finishInterruptedRuns(pair)
            logger.info(
                "resumed pending messages",
                metadata: [
                    "key": "\(pair.key)", "destination": "\(pair.destination)", "sent": "\(outcome.delivered)",
                    "failed": "\(outcome.failed)", "pending": "\(outcome.pending)",
                ])
        }

        // Steps 3–6 for each selected pair.
        for pair in selected {
            let name = PairName(key: pair.key, destination: pair.destination.name)
            if !order.contains(name) { order.append(name) }
            var item = entry(name)
            let record = try await state.pairRecord(name)
            item.due = selection.force || pair.isDue(lastSyncedAt: record.lastSyncedAt, now: now)
            item.firstSync = record.isFirstSync
            defer { entries[name] = item }
            guard item.due else { continue }
            guard pair.unsupportedReason == nil, let destination = destinations[pair.destination.name] else {
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
            let written = try await writeOutbox(pair, firstSync: item.firstSync, now: now)
            let outboxWritten = ContinuousClock.now
            item.invalid += written.invalid.count
            report.warnings += Self.invalidWarnings(written.invalid, key: pair.key, destination: pair.destination.name)
            let outcome = try await delivery.deliver(name, to: destination)
            logger.debug(
                "pair timings",
                metadata: [
                    "key": "\(pair.key)", "destination": "\(pair.destination.name)",
                    "diff_and_outbox_s": "\(Self.seconds(outboxWritten - phases))",
                    "delivery_s": "\(Self.seconds(ContinuousClock.now - outboxWritten))",
                ])
            item.sent += outcome.delivered
            item.failed += outcome.failed + written.invalid.count
            item.pending += outcome.pending
            try await runs.finish(written.runId, durationMilliseconds: clock() - started)
            logger.info(
                "synced pair",
                metadata: [
                    "key": "\(pair.key)", "destination": "\(pair.destination.name)", "sent": "\(outcome.delivered)",
                    "failed": "\(outcome.failed + written.invalid.count)", "invalid": "\(written.invalid.count)",
                    "pending": "\(outcome.pending)",
                ])
        }
        report.pairs = order.map { entry($0) }
        report.orphaned = try await SyncStatus.orphans(state: state, definitions: engine.definitions)
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

    /// Diffs `pair` and writes its run and every change to the outbox in one transaction. A message
    /// that can never be sent (`SyncMessage.invalidReason`) is written as failed, with its reason,
    /// and returned: it is never delivered nor applied, so the next due sync diffs it again.
    private func writeOutbox(_ pair: SyncPair, firstSync: Bool, now: Int64) async throws -> WrittenRun {
        let started = ContinuousClock.now
        _ = try await state.stageDiff(diffRequest(pair, now: now, sampleSize: 0))
        logger.debug(
            "pair diffed",
            metadata: [
                "key": "\(pair.key)", "destination": "\(pair.destination.name)",
                "seconds": "\(Self.seconds(ContinuousClock.now - started))",
            ])
        let run = OutboxRun(
            pair: PairName(key: pair.key, destination: pair.destination.name), startedAt: now, firstSync: firstSync,
            changes: .stagedDiff, messages: OutboxMessageMaker(pair: pair, spaceID: configuration.spaceID, now: now))
        guard let written = try await state.writeRun(run) else {
            throw AudienceSyncError(.store, "the store wrote no run for \(pair.key) → \(pair.destination.name)")
        }
        return written
    }

    /// What the store diffs for `pair` at `now`: the definition's statement against the snapshot.
    func diffRequest(_ pair: SyncPair, now: Int64, sampleSize: Int) throws -> DiffRequest {
        DiffRequest(
            pair: PairName(key: pair.key, destination: pair.destination.name), kind: pair.definition.kind,
            members: try engine.statement(key: pair.key, now: now), sampleSize: sampleSize)
    }

    /// The warnings for a pair's messages that can never be sent: the first few users and reasons.
    static func invalidWarnings(_ invalid: [InvalidMessage], key: String, destination: String) -> [String] {
        guard !invalid.isEmpty else { return [] }
        var lines = invalid.prefix(3).map { "\(key) → \(destination): not sent to \($0.userId): \($0.reason)" }
        if invalid.count > 3 { lines.append("\(key) → \(destination): \(invalid.count - 3) more messages not sent") }
        return lines
    }
}
