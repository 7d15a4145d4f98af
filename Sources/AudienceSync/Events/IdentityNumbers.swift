/// Dense numbers for the user ids and identity links of an ingest, given on the parsing thread.
///
/// Every stored message with a `userId` may lower its user's `first_seen` and its links' earliest
/// time (SPEC §3.2). Looking those up by string on the storing thread cost a quarter of its time;
/// here the parsing thread, which has time to spare, numbers each user id and each
/// (anonymous id, user id) pair once, and the storing thread keeps the earliest times in arrays
/// indexed by those numbers (`EarliestIdentities`). New numbers travel with the batch that first
/// uses them. Memory is bounded: past `limit` users or links the numbering starts over, and the
/// batch says so (`StagedBatch.renumbered`).
final class IdentityNumbers: @unchecked Sendable {
    // Used by one thread at a time: the parser while it runs, then nobody until the next input.
    private var users: [String: Int32] = [:]
    private var anonymousIds: [String: Int32] = [:]
    private var links: [UInt64: Int32] = [:]
    let limit: Int

    init(limit: Int = 1 << 20) {
        self.limit = limit
    }

    /// Whether the numbering must start over before the next batch.
    var isFull: Bool { users.count >= limit || links.count >= limit || anonymousIds.count >= limit }

    func removeAll() {
        users.removeAll()
        anonymousIds.removeAll()
        links.removeAll()
    }

    /// The number of `userId`; a new one is added to `batch.newUsers`.
    func user(_ userId: String, in batch: StagedBatch) -> Int32 {
        if let number = users[userId] { return number }
        let number = Int32(users.count)
        users[userId] = number
        batch.newUsers.append(userId)
        return number
    }

    /// The number of the link of `anonymousId` to user number `user`; a new one is added to `batch.newLinks`.
    func link(_ anonymousId: String, user: Int32, in batch: StagedBatch) -> Int32 {
        let anonymous: Int32
        if let number = anonymousIds[anonymousId] {
            anonymous = number
        } else {
            anonymous = Int32(anonymousIds.count)
            anonymousIds[anonymousId] = anonymous
        }
        let key = UInt64(UInt32(bitPattern: anonymous)) << 32 | UInt64(UInt32(bitPattern: user))
        if let number = links[key] { return number }
        let number = Int32(links.count)
        links[key] = number
        batch.newLinks.append(StagedBatch.NewLink(anonymousId: anonymousId, user: user))
        return number
    }
}

/// The storing thread's side of `IdentityNumbers`: for each numbered user and link, the earliest
/// time the store is known to have or will have at the next commit, and which of them must be
/// written at that commit.
///
/// A user's bound `t` means: the stored `first_seen` is at most `t`, or `t` is pending (to be
/// written at the next commit). A message that cannot lower the bound changes nothing — event
/// times mostly increase, so most messages are skipped with one comparison. Links are the same
/// with (time, messageId).
struct EarliestIdentities {
    private(set) var userIds: [String] = []
    private var userTimes: [Int64] = []
    private var userPending: [Bool] = []
    private(set) var pendingUsers: [Int32] = []

    private(set) var linkAnonymousIds: [String] = []
    private(set) var linkUsers: [Int32] = []
    private var linkTimes: [Int64] = []
    private var linkMessageIds: [String] = []
    private var linkPending: [Bool] = []
    private(set) var pendingLinks: [Int32] = []

    /// Adds the numbers a batch introduces (in the order they were given).
    mutating func add(_ batch: StagedBatch) {
        for userId in batch.newUsers {
            userIds.append(userId)
            userTimes.append(.max)
            userPending.append(false)
        }
        for link in batch.newLinks {
            linkAnonymousIds.append(link.anonymousId)
            linkUsers.append(link.user)
            linkTimes.append(.max)
            linkMessageIds.append("")
            linkPending.append(false)
        }
    }

    /// Notes a stored message of user `user` at `time`.
    @inline(__always)
    mutating func noteUser(_ user: Int32, time: Int64) {
        let index = Int(user)
        guard time < userTimes[index] else { return }
        userTimes[index] = time
        if !userPending[index] {
            userPending[index] = true
            pendingUsers.append(user)
        }
    }

    /// Notes a stored message linking `link` at `time`; `messageId` is read only when it may matter.
    @inline(__always)
    mutating func noteLink(_ link: Int32, time: Int64, messageId: () -> String) {
        let index = Int(link)
        guard time <= linkTimes[index] else { return }
        let id = messageId()
        if time == linkTimes[index] && id >= linkMessageIds[index] { return }
        linkTimes[index] = time
        linkMessageIds[index] = id
        if !linkPending[index] {
            linkPending[index] = true
            pendingLinks.append(link)
        }
    }

    func userTime(_ user: Int32) -> Int64 { userTimes[Int(user)] }

    func link(_ link: Int32) -> (anonymousId: String, userId: String, time: Int64, messageId: String) {
        let index = Int(link)
        return (linkAnonymousIds[index], userIds[Int(linkUsers[index])], linkTimes[index], linkMessageIds[index])
    }

    /// After the pending values were written: they become known bounds.
    mutating func clearPending() {
        for user in pendingUsers { userPending[Int(user)] = false }
        for link in pendingLinks { linkPending[Int(link)] = false }
        pendingUsers.removeAll(keepingCapacity: true)
        pendingLinks.removeAll(keepingCapacity: true)
    }

    /// After a rollback nothing pending was stored, and the bounds cannot tell pending from known:
    /// forget every time (the numbers stay valid).
    mutating func forgetTimes() {
        for index in userTimes.indices {
            userTimes[index] = .max
            userPending[index] = false
        }
        for index in linkTimes.indices {
            linkTimes[index] = .max
            linkMessageIds[index] = ""
            linkPending[index] = false
        }
        pendingUsers.removeAll()
        pendingLinks.removeAll()
    }

    /// When the numbering starts over (nothing may be pending).
    mutating func removeAll() {
        precondition(pendingUsers.isEmpty && pendingLinks.isEmpty, "pending identities must be written first")
        self = EarliestIdentities()
    }
}
