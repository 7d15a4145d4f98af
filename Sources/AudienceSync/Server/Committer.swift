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
/// It runs on a thread of its own, not on Swift's cooperative pool: each request's batch goes to
/// the writer and back, and on the pool every return waited behind the requests being parsed
/// there — about 0.3 ms per request, which made the commit loop, not the store, what bounded
/// single-message requests.
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

    let maxQueuedBytes: Int
    private let logger: Logger
    private let metrics: CollectorMetrics?
    /// Between failed attempts while the store is locked by another writer.
    private let retryPause: Swift.Duration
    private var queue: [Waiting] = []
    private var queuedBytes = 0
    private var queuedMessages = 0
    /// Told when work is queued or the committer should stop (at most one signal waits).
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let stopping = NIOLockedValueBox(false)
    /// Users and links numbered in commit order (`StagedBatch.numberIdentities`).
    private var identities = IdentityNumbers()
    /// The numbering started over (after a rollback): the next batch tells the writer so.
    private var renumberNext = false
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
    var queued: (messages: Int, bytes: Int) { (queuedMessages, queuedBytes) }

    /// Queues `batch` and returns once it is committed: the messages stored and the duplicates.
    func store(_ batch: StagedBatch, bytes: Int) async throws -> EventWriteCounts {
        guard !stopping.withLockedValue({ $0 }) else { throw Refusal.stopping }
        // A request larger than the whole bound still goes through when nothing else waits.
        guard queuedBytes + bytes <= maxQueuedBytes || queuedBytes == 0 else { throw Refusal.queueFull }
        return try await withCheckedThrowingContinuation { answer in
            queue.append(Waiting(batch: batch, bytes: bytes, answer: answer))
            queuedBytes += bytes
            queuedMessages += batch.messages.count
            metrics?.queue(messages: queuedMessages, bytes: queuedBytes)
            wake.yield()
        }
    }

    /// No more requests: `run` returns once what is queued is committed. Callable from anywhere
    /// (a graceful-shutdown handler).
    nonisolated func stop() {
        stopping.withLockedValue { $0 = true }
        wake.yield()
    }

    /// Commits what requests queue until `stop`, through `writer` (which commits only when told).
    func run(writer: any EventWriter) async {
        var signals = wakeUps.makeAsyncIterator()
        while true {
            if queue.isEmpty {
                if stopping.withLockedValue({ $0 }) { return }
                if await signals.next() == nil {
                    // The stream ends only when this task is cancelled (the HTTP server failed, as
                    // when its address is in use): take nothing more, commit what is queued, return.
                    stopping.withLockedValue { $0 = true }
                }
                continue
            }
            let group = queue
            queue = []
            await commit(group, writer: writer)
            for waiting in group {
                queuedBytes -= waiting.bytes
                queuedMessages -= waiting.batch.messages.count
            }
            metrics?.queue(messages: queuedMessages, bytes: queuedBytes)
        }
    }

    /// Writes and commits `group` in one transaction, retrying while the store is locked by another
    /// writer; then answers each request.
    private func commit(_ group: [Waiting], writer: any EventWriter) async {
        while true {
            let started = ContinuousClock.now
            do {
                var batches: [StagedBatch] = []
                batches.reserveCapacity(group.count)
                for waiting in group {
                    var batch = waiting.batch
                    batch.numberIdentities(with: &identities)
                    if renumberNext {
                        batch.renumbered = true
                        renumberNext = false
                    }
                    batches.append(batch)
                }
                // One hand-off to the writer's thread for the whole group.
                let counts = try await writer.writeAndCommit(batches)
                lastCommitAt = clock()
                metrics?.committed(seconds: Self.seconds(ContinuousClock.now - started))
                for (waiting, count) in zip(group, counts) { waiting.answer.resume(returning: count) }
                return
            } catch {
                await writer.rollback()
                // Numbers given in the failed attempt may not have reached the writer: number anew.
                identities.removeAll()
                renumberNext = true
                if let error = error as? AudienceSyncError, error.code == .locked {
                    logger.notice(
                        "the store is locked by another writer; the requests wait",
                        metadata: ["queued_messages": "\(queuedMessages)", "queued_bytes": "\(queuedBytes)"])
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
