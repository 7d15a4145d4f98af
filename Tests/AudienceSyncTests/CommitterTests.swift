import Logging
import Testing

@testable import AudienceSync

/// The committer numbers users and links as requests queue; commits that fail (a store locked by
/// another writer) are retried, and every number the writer is given still names its own user and link.
@Suite struct CommitterTests {
    /// A writer that refuses the first attempts as locked, and keeps the numbers it is given as a
    /// store's writer does: the new ones appended, all forgotten at a batch marked `renumbered`.
    actor NumberCheckingWriter: EventWriter {
        var lockedAttempts: Int
        var userIds: [String] = []
        var links: [(anonymousId: String, user: Int32)] = []
        /// For each stored message: its userId, and what its numbers name (user, link's anonymous id and user).
        var stored: [(userId: String, named: String, link: String?)] = []

        init(lockedAttempts: Int) { self.lockedAttempts = lockedAttempts }

        func write(_ batch: StagedBatch) throws -> EventWriteCounts {
            if batch.renumbered {
                userIds = []
                links = []
            }
            userIds.append(contentsOf: batch.newUsers)
            links.append(contentsOf: batch.newLinks.map { ($0.anonymousId, $0.user) })
            if lockedAttempts > 0 {
                lockedAttempts -= 1
                throw AudienceSyncError(.locked, "the store stayed locked by another process")
            }
            func text(_ range: Range<Int>?) -> String? { range.map { String(decoding: batch.arena[$0], as: UTF8.self) } }
            for message in batch.messages {
                guard let userId = text(message.userId) else { continue }
                let link = message.link >= 0 ? links[Int(message.link)] : nil
                stored.append(
                    (userId, userIds[Int(message.user)], link.map { "\($0.anonymousId)>\(userIds[Int($0.user)])" }))
            }
            return EventWriteCounts(accepted: batch.messages.count)
        }

        func commit() {}
        func rollback() {}
    }

    static func batch(_ messages: [(user: String, anonymous: String?)], tag: String) throws -> StagedBatch {
        let body = messages.enumerated().map { index, message in
            let anonymous = message.anonymous.map { #","anonymousId":"\#($0)""# } ?? ""
            return #"{"type":"track","event":"E","userId":"\#(message.user)","messageId":"\#(tag)\#(index)"\#(anonymous)}"#
        }
        let stager = RequestStager(maxMessageBytes: 32_768)
        return try stager.stage(
            Array(#"{"batch":[\#(body.joined(separator: ","))]}"#.utf8), route: .batch, receivedAt: 1_700_000_000_000,
            source: "web"
        ).batch
    }

    @Test func requestsQueuedWhileTheStoreIsLockedKeepTheirUsersAndLinks() async throws {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let committer = Committer(maxQueuedBytes: 1 << 20, logger: logger, retryPause: .milliseconds(20))
        let writer = NumberCheckingWriter(lockedAttempts: 3)
        let first = try Self.batch([("u1", "a1"), ("u2", nil)], tag: "f")
        let second = try Self.batch([("u2", "a2"), ("u3", "a1"), ("u1", "a1")], tag: "s")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await committer.run(writer: writer) }
            group.addTask { _ = try await committer.store(first, bytes: 1) }
            // Queued while the first request's commit is refused.
            try await Task.sleep(for: .milliseconds(10))
            _ = try await committer.store(second, bytes: 1)
            committer.stop()
            try await group.waitForAll()
        }
        let stored = await writer.stored
        #expect(stored.map(\.userId) == ["u1", "u2", "u2", "u3", "u1"])
        #expect(stored.map(\.named) == stored.map(\.userId))
        #expect(stored.map(\.link) == ["a1>u1", nil, "a2>u2", "a1>u3", "a1>u1"])
    }
}
