import Logging

/// Delivers a pair's pending outbox messages in batches, in outbox order (SPEC §6 step 5), and has
/// the store record each answer: a batch acknowledged whole moves the pair's delivery mark; any
/// other batch is recorded message by message. A destination that throws, or leaves messages
/// pending, stops the delivery: the rest stays pending for the next run, to be sent again with the
/// same messageIds.
struct Delivery {
    let state: any SyncStateStore
    let logger: Logger
    /// Messages per batch; nil leaves it to the destination (`preferredBatchSize`, else 500).
    let batchSize: Int?
    /// Wall-clock milliseconds, written on the messages recorded one by one.
    let clock: @Sendable () -> Int64
    let progress: ((DeliveryProgress) -> Void)?

    /// What a delivery did.
    struct Outcome: Sendable, Equatable {
        var delivered = 0
        var failed = 0
        /// Messages still owed to the destination when the delivery stopped.
        var pending = 0
    }

    /// Three things overlap: once a batch is acknowledged whole, the next batch (read already) is
    /// handed to the destination and the one after it is read, while the store records the
    /// first. Batches still reach the destination one after another, in outbox order, each only
    /// once the one before it was answered; a crash while the next batch is out leaves both
    /// pending, to be sent again with the same messageIds. Reading ahead is sound because the
    /// pending rows after a batch are fixed while the run holds the sync lock: the outbox was
    /// written before delivery began, and recording an answer changes only the rows it answers.
    func deliver(_ pair: PairName, to destination: any Destination) async throws -> Outcome {
        let size = max(1, batchSize ?? destination.preferredBatchSize ?? 500)
        let state = self.state
        var outcome = Outcome()
        let total = try await state.pendingCount(pair)
        func report() {
            progress?(
                DeliveryProgress(
                    key: pair.key, destination: pair.destination, done: outcome.delivered + outcome.failed, total: total))
        }
        report()
        var batch = try await state.pendingMessages(pair, after: 0, limit: size)
        var answer: Result<[DeliveryResult], any Error>
        var next: [OutboundMessage]
        do {
            let first = batch
            async let firstAnswer = Self.send(first, to: destination)
            next = try await Self.read(state, pair, after: first, limit: size)
            answer = await firstAnswer
        }
        var batchStart: Int64 = 0
        while let last = batch.last {
            let results: [DeliveryResult]
            switch answer {
            case .success(let value):
                results = value
            case .failure(let error):
                logger.error(
                    "delivery interrupted; the messages stay pending",
                    metadata: ["key": "\(pair.key)", "destination": "\(pair.destination)", "error": "\(error)"])
                outcome.pending = try await state.pendingCount(pair)
                return outcome
            }
            guard results.count == batch.count else {
                throw AudienceSyncError(
                    .delivery, "destination \(pair.destination) answered \(results.count) results for \(batch.count) messages")
            }
            let whole = results.allSatisfy({ $0 == .acknowledged }) && Set(batch.map(\.userId)).count == batch.count
            if whole {
                let upcoming = next
                async let nextAnswer = Self.send(upcoming, to: destination)
                async let following = Self.read(state, pair, after: upcoming, limit: size)
                try await state.acknowledge(pair, after: batchStart, through: last.id, count: batch.count)
                outcome.delivered += batch.count
                report()
                answer = await nextAnswer
                batch = upcoming
                next = try await following
            } else {
                var outcomes: [MessageOutcome] = []
                var leftPending: String?
                var delivered = 0
                var failed = 0
                for (message, result) in zip(batch, results) {
                    outcomes.append(MessageOutcome(id: message.id, result: result))
                    switch result {
                    case .acknowledged: delivered += 1
                    case .failed: failed += 1
                    case .pending(let reason): leftPending = leftPending ?? reason
                    }
                }
                try await state.record(outcomes, at: clock())
                outcome.delivered += delivered
                outcome.failed += failed
                report()
                if let leftPending {
                    logger.error(
                        "delivery stopped; the messages not acknowledged stay pending for the next run",
                        metadata: ["key": "\(pair.key)", "destination": "\(pair.destination)", "reason": "\(leftPending)"])
                    break
                }
                let upcoming = next
                async let nextAnswer = Self.send(upcoming, to: destination)
                async let following = Self.read(state, pair, after: upcoming, limit: size)
                answer = await nextAnswer
                batch = upcoming
                next = try await following
            }
            batchStart = last.id
        }
        outcome.pending = try await state.pendingCount(pair)
        return outcome
    }

    /// The pair's pending messages after `batch`, none when `batch` is empty (the end was reached).
    private static func read(_ state: any SyncStateStore, _ pair: PairName, after batch: [OutboundMessage], limit: Int)
        async throws -> [OutboundMessage]
    {
        guard let last = batch.last else { return [] }
        return try await state.pendingMessages(pair, after: last.id, limit: limit)
    }

    /// The destination's answer to `batch` (none for an empty one), or the error it threw.
    private static func send(_ batch: [OutboundMessage], to destination: any Destination) async
        -> Result<[DeliveryResult], any Error>
    {
        guard !batch.isEmpty else { return .success([]) }
        do {
            return .success(try await destination.deliver(batch))
        } catch {
            return .failure(error)
        }
    }
}

/// The records of runs (SPEC §6 step 6) and the pruning of what they delivered.
struct RunBookkeeping {
    let state: any SyncStateStore

    /// How long delivered outbox rows are kept, by the `now` of the run that wrote them: a week of
    /// what was sent, for questions about it, without the store growing by every message forever.
    static let deliveredRetentionMilliseconds: Int64 = 7 * 24 * 3_600_000

    /// Deletes the delivered messages of runs that started a retention period before `now`. It runs
    /// before anything is sent, so what this sync delivers is there to read after it.
    func pruneDeliveredMessages(now: Int64) async throws {
        try await state.pruneDeliveredMessages(startedBefore: now - Self.deliveredRetentionMilliseconds)
    }

    /// Records a run's counts and outcome.
    func finish(_ runId: Int64, durationMilliseconds: Int64?) async throws {
        try await state.finishRun(runId, durationMilliseconds: durationMilliseconds)
    }

    /// Finishes the records of a pair's runs that were interrupted and whose messages may be
    /// resolved now.
    func finishInterruptedRuns(_ pair: PairName) async throws {
        for runId in try await state.unfinishedRuns(pair) {
            try await state.finishRun(runId, durationMilliseconds: nil)
        }
    }
}
