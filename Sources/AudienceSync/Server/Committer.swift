import Logging
import NIOConcurrencyHelpers

/// Stores what the server's requests accepted (SPEC §11.3): requests queue their batches, one loop
/// writes everything queued and commits it in one transaction (group commit, so that durability
/// does not cost a commit per request), and only then does each request learn what was stored.
///
/// The queue is bounded by `maxQueuedBytes`: a request that would pass it is refused at once
/// (`Refusal.queueFull`, answered 503 with `Retry-After`). While another process holds the store's
/// write lock (a `sync` writing its outbox), the loop keeps retrying and requests keep waiting, up
/// to that bound; they are never failed for it.
///
/// Its loop runs on a thread of its own, not on Swift's cooperative pool: each group goes to the
/// writer and back, and on the pool every return waited behind the requests being parsed there —
/// about 0.3 ms per request when each request went on its own, which made the commit loop, not the store, what bounded
/// single-message requests. Requests queue behind a lock, without a hop to that thread; the loop
/// hands each group to the writer in one call (`EventWriter.writeAndCommit`).
actor Committer {
    private let executor = ThreadExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Why a request's messages were not stored.
    enum Refusal: Error, Sendable {
        /// Accepted but uncommitted work would pass the bound.
        case queueFull
        /// The store could not commit (disk full, a broken store): the client should retry.
        case storeFailed(String)
        /// The server is shutting down and takes nothing more.
        case stopping
    }

    private struct Waiting {
        var batch: StagedBatch
        var bytes: Int
        var answer: CheckedContinuation<EventWriteCounts, any Error>
    }

    /// What requests queued and the loop has not taken yet, and what is queued or being committed.
    private struct Queue {
        var waiting: [Waiting] = []
        var bytes = 0
        var messages = 0
        /// Set by `stop` (or when the loop is cancelled): nothing more is queued.
        var stopping = false
        /// Users and links numbered in queue order, which is commit order
        /// (`StagedBatch.numberIdentities`).
        var identities = IdentityNumbers()
        /// The numbering started over (after a failed commit): the next batch numbered tells the
        /// writer so.
        var renumberNext = false

        /// Numbers `batch`'s users and links after everything queued before it; `anew`: forgets the
        /// numbers it had.
        mutating func number(_ batch: inout StagedBatch, anew: Bool = false) {
            if anew { batch.forgetIdentityNumbers() }
            batch.numberIdentities(with: &identities)
            if renumberNext {
                batch.renumbered = true
                renumberNext = false
            }
        }
    }

    let maxQueuedBytes: Int
    private let logger: Logger
    private let metrics: CollectorMetrics?
    /// Between failed attempts while the store is locked by another writer.
    private let retryPause: Swift.Duration
    /// Behind a lock, not in the actor: a request queues its batch from its own thread, without a
    /// hop to the committer's (a thread wake-up per request while the loop was idle, and a job in
    /// its queue while it was not).
    private let queue = NIOLockedValueBox(Queue())
    /// Told when work is queued or the committer should stop (at most one signal waits).
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// The last commit's time (epoch milliseconds), for `/health`.
    private(set) var lastCommitAt: Int64?
    private let clock: @Sendable () -> Int64

    init(
        maxQueuedBytes: Int, logger: Logger, metrics: CollectorMetrics? = nil, retryPause: Swift.Duration = .milliseconds(50),
        clock: @escaping @Sendable () -> Int64 = Timestamp.now
    ) {
        self.maxQueuedBytes = maxQueuedBytes
        self.logger = logger
        self.metrics = metrics
        self.retryPause = retryPause
        self.clock = clock
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// What waits for a commit now.
    nonisolated var queued: (messages: Int, bytes: Int) { queue.withLockedValue { ($0.messages, $0.bytes) } }

    /// Queues `batch` and returns once it is committed: the messages stored and the duplicates.
    nonisolated func store(_ batch: StagedBatch, bytes: Int) async throws -> EventWriteCounts {
        try await withCheckedThrowingContinuation { answer in
            let refusal = queue.withLockedValue { queue -> Refusal? in
                guard !queue.stopping else { return .stopping }
                // A request larger than the whole bound still goes through when nothing else waits.
                guard queue.bytes + bytes <= maxQueuedBytes || queue.bytes == 0 else { return .queueFull }
                // Numbered here, on the request's thread while the writer commits earlier groups,
                // not in the commit loop, where it was most of the committer's time; under the
                // queue's lock, so that numbers are given in the order the writer sees them.
                var batch = batch
                queue.number(&batch)
                queue.waiting.append(Waiting(batch: batch, bytes: bytes, answer: answer))
                queue.bytes += bytes
                queue.messages += batch.messages.count
                metrics?.queue(messages: queue.messages, bytes: queue.bytes)
                return nil
            }
            if let refusal {
                answer.resume(throwing: refusal)
            } else {
                wake.yield()
            }
        }
    }

    /// No more requests: `run` returns once what is queued is committed. Callable from anywhere
    /// (a graceful-shutdown handler).
    nonisolated func stop() {
        queue.withLockedValue { $0.stopping = true }
        wake.yield()
    }

    /// Commits what requests queue until `stop`, through `writer` (which commits only when told).
    func run(writer: any EventWriter) async {
        var signals = wakeUps.makeAsyncIterator()
        while true {
            let (group, stopping) = queue.withLockedValue { queue in
                defer { queue.waiting = [] }
                return (queue.waiting, queue.stopping)
            }
            if group.isEmpty {
                // Nothing is queued after `stopping` is set (both under the lock): done.
                if stopping { return }
                if await signals.next() == nil {
                    // The stream ends only when this task is cancelled (the HTTP server failed, as
                    // when its address is in use): take nothing more, commit what is queued, return.
                    queue.withLockedValue { $0.stopping = true }
                }
                continue
            }
            await commit(group, writer: writer)
            queue.withLockedValue { queue in
                for waiting in group {
                    queue.bytes -= waiting.bytes
                    queue.messages -= waiting.batch.messages.count
                }
                metrics?.queue(messages: queue.messages, bytes: queue.bytes)
            }
        }
    }

    /// Writes and commits `group` in one transaction, retrying while the store is locked by another
    /// writer; then answers each request.
    private func commit(_ group: [Waiting], writer: any EventWriter) async {
        var batches = group.map(\.batch)
        while true {
            let started = ContinuousClock.now
            do {
                // One hand-off to the writer's thread for the whole group.
                let counts = try await writer.writeAndCommit(batches)
                lastCommitAt = clock()
                metrics?.committed(seconds: Self.seconds(ContinuousClock.now - started))
                for (waiting, count) in zip(group, counts) { waiting.answer.resume(returning: count) }
                return
            } catch {
                await writer.rollback()
                let retry = (error as? AudienceSyncError)?.code == .locked
                // The writer keeps the numbers of the batches it was given, whether or not they were
                // stored, and starts over at a batch marked `renumbered`. A group whose first batch
                // is so marked can be given again as it is (so a store locked for seconds costs no
                // renumbering per attempt); otherwise number anew: the group when it is retried,
                // then everything queued behind it.
                if !(retry && batches.first?.renumbered == true) {
                    queue.withLockedValue { queue in
                        queue.identities.removeAll()
                        queue.renumberNext = true
                        if retry {
                            for index in batches.indices { queue.number(&batches[index], anew: true) }
                        }
                        var waiting = queue.waiting
                        queue.waiting = []
                        for index in waiting.indices { queue.number(&waiting[index].batch, anew: true) }
                        queue.waiting = waiting
                    }
                }
                if retry {
                    let queued = queued
                    logger.notice(
                        "the store is locked by another writer; the requests wait",
                        metadata: ["queued_messages": "\(queued.messages)", "queued_bytes": "\(queued.bytes)"])
                    try? await Task.sleep(for: retryPause)
                    continue
                }
                logger.warning("commit failed; the requests are answered 503", metadata: ["error": "\(error)"])
                for waiting in group { waiting.answer.resume(throwing: Refusal.storeFailed("\(error)")) }
                return
            }
        }
    }

    static func seconds(_ duration: Swift.Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
