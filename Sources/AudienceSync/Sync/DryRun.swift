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
    /// What `sync --force` with the same selection would do at `now` (SPEC §7), changing nothing:
    /// the store may be open for reading only. Messages are made as the sync's outbox writer makes
    /// them (`OutboxMessageMaker`), with the run ids the sync would give.
    public func dryRun(
        _ selection: SyncSelection, now: Int64, sampleSize: Int = 10, messages: DryRunMessages = .collect
    ) async throws -> DiffReport {
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
        for pending in try await state.pendingPairs() {
            guard configuration.destination(named: pending.destination) != nil else { continue }
            var lastId: Int64 = 0
            while true {
                let batch = try await state.pendingMessages(pending, after: lastId, limit: 1000)
                guard let last = batch.last else { break }
                lastId = last.id
                for message in batch { try emit(message.body) }
            }
        }

        var runId = try await state.nextRunId()
        for pair in pairs {
            let name = PairName(key: pair.key, destination: pair.destination.name)
            let record = try await state.pairRecord(name)
            let diff = try await state.stageDiff(diffRequest(pair, now: now, sampleSize: sampleSize))
            var item = DiffReport.Pair(
                key: pair.key, kind: pair.definition.kind, destination: name.destination, firstSync: record.isFirstSync,
                due: pair.isDue(lastSyncedAt: record.lastSyncedAt, now: now),
                nextDueAt: pair.nextDueAt(lastSyncedAt: record.lastSyncedAt, now: now),
                lastSyncedAt: record.lastSyncedAt, counts: diff.counts, sample: diff.sample,
                skipped: pair.unsupportedReason)
            guard item.skipped == nil else {
                item.due = false
                report.pairs.append(item)
                continue
            }
            // `sync` skips a pair whose earlier messages could not be delivered; here they are
            // assumed delivered, as a sync that gets that far delivers them first.
            let maker = OutboxMessageMaker(pair: pair, spaceID: configuration.spaceID, now: now)
            var position = 0
            while true {
                let changes = try await state.stagedChanges(from: position, limit: 10_000)
                guard !changes.isEmpty else { break }
                position += changes.count
                for change in changes {
                    // Counting needs only each message's size, which needs neither its hash nor its text.
                    let reason: String?
                    if case .count = messages {
                        reason = try maker.invalidReason(userId: change.userId, value: change.value, runId: runId)
                        if reason == nil { report.messageCount += 1 }
                    } else {
                        let message = try maker.message(userId: change.userId, value: change.value, runId: runId)
                        reason = message.invalidReason
                        if reason == nil { try emit(message.body) }
                    }
                    if let reason {
                        item.invalid += 1
                        if item.invalidSample.count < sampleSize {
                            item.invalidSample.append(InvalidMessage(userId: change.userId, reason: reason))
                        }
                    }
                }
            }
            runId += 1
            report.pairs.append(item)
        }
        return report
    }
}
