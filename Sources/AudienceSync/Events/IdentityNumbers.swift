/// Dense numbers for the user ids and identity links of an ingest, given on the parsing thread.
///
/// Every stored message with a `userId` may lower its user's `first_seen` and its links' earliest
/// time (SPEC §3.2). Looking those up by string on the storing thread cost a quarter of its time;
/// here the parsing thread, which has time to spare, numbers each user id and each
/// (anonymous id, user id) pair once, in hash tables cheaper than `Dictionary` (`NumberSlots`),
/// and the storing thread keeps the earliest times in arrays indexed by those numbers
/// (`EarliestIdentities`). New numbers travel with the batch that first uses them. Memory is bounded: past `limit` users or links the numbering starts over, and the
/// batch says so (`StagedBatch.renumbered`).
struct IdentityNumbers: Sendable {
    private var users = StringNumbers()
    private var anonymousIds = StringNumbers()
    private var links = NumberSlots()
    private var linkKeys: [UInt64] = []
    let limit: Int

    init(limit: Int = 1 << 20) {
        self.limit = limit
    }

    /// Whether the numbering must start over before the next batch.
    var isFull: Bool { users.count >= limit || links.count >= limit || anonymousIds.count >= limit }

    mutating func removeAll() {
        self = IdentityNumbers(limit: limit)
    }

    /// The number of `userId`; a new one is added to `batch.newUsers`.
    mutating func user(_ userId: String, in batch: inout StagedBatch) -> Int32 {
        let (number, isNew) = users.number(of: userId)
        if isNew { batch.newUsers.append(userId) }
        return number
    }

    /// The number of the link of `anonymousId` to user number `user`; a new one is added to `batch.newLinks`.
    mutating func link(_ anonymousId: String, user: Int32, in batch: inout StagedBatch) -> Int32 {
        let anonymous = anonymousIds.number(of: anonymousId).number
        let key = UInt64(UInt32(bitPattern: anonymous)) << 32 | UInt64(UInt32(bitPattern: user))
        let (number, isNew) = links.number(hash: NumberSlots.hash(key)) { linkKeys[Int($0)] == key }
        guard isNew else { return number }
        linkKeys.append(key)
        batch.newLinks.append(StagedBatch.NewLink(anonymousId: anonymousId, user: user))
        return number
    }
}

/// Numbers distinct strings 0, 1, 2, … in the order they are first seen.
struct StringNumbers: Sendable {
    private var slots = NumberSlots()
    private var keys: [String] = []

    var count: Int { keys.count }

    @inline(__always)
    mutating func number(of key: String) -> (number: Int32, isNew: Bool) {
        let result = slots.number(hash: NumberSlots.hash(key)) { keys[Int($0)] == key }
        if result.isNew { keys.append(key) }
        return result
    }
}

/// An open-addressing hash table from keys to their numbers; the caller keeps the keys and says
/// whether a number's key is the one looked up. Faster than `Dictionary` for this use: one
/// cheap hash of the bytes, and the full 64-bit hash is compared before any key.
struct NumberSlots: Sendable {
    /// Number + 1 of the key in each slot; 0 for an empty slot. The count is a power of two.
    private var slots = [Int32](repeating: 0, count: 1024)
    /// The hash of each number's key.
    private var hashes: [UInt64] = []

    var count: Int { hashes.count }

    /// Per process, so that no input can be crafted to make every key collide.
    private static let seed = UInt64.random(in: .min ... .max)

    @inline(__always)
    static func hash(_ value: UInt64) -> UInt64 { SplitMix64.mix(value ^ seed) }

    /// A hash of the key's UTF-8 bytes, eight at a time.
    @inline(__always)
    static func hash(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { bytes in
            var hash = seed ^ UInt64(bytes.count)
            guard let base = bytes.baseAddress else { return SplitMix64.mix(hash) }
            let raw = UnsafeRawPointer(base)
            var offset = 0
            while offset + 8 <= bytes.count {
                hash = SplitMix64.mix(hash ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            if offset < bytes.count {
                var tail: UInt64 = 0
                for index in offset..<bytes.count { tail |= UInt64(base[index]) << UInt64(8 * (index - offset)) }
                hash = SplitMix64.mix(hash ^ tail ^ 0x80)
            }
            return hash
        }
    }

    /// The number of the key with `hash` for which `isKey(number)`, or a new number for it.
    @inline(__always)
    mutating func number(hash: UInt64, isKey: (Int32) -> Bool) -> (number: Int32, isNew: Bool) {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot == 0 { break }
            let number = slot - 1
            if hashes[Int(number)] == hash && isKey(number) { return (number, false) }
            index = (index + 1) & mask
        }
        let number = Int32(hashes.count)
        hashes.append(hash)
        slots[index] = number + 1
        if hashes.count * 2 > slots.count { grow() }
        return (number, true)
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (number, hash) in hashes.enumerated() {
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = Int32(number) + 1
        }
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

    /// Counts a newly stored message and notes its user and identity links for the next commit
    /// (every store's writer does this for each message it stored).
    mutating func noteStored(_ message: StagedBatch.Message, arena: UnsafeRawBufferPointer, counts: inout EventWriteCounts) {
        counts.accepted += 1
        guard message.user >= 0 else {
            counts.anonymous += 1
            return
        }
        noteUser(message.user, time: message.time)
        let messageId = { String(decoding: UnsafeRawBufferPointer(rebasing: arena[message.messageId]), as: UTF8.self) }
        if message.link >= 0 { noteLink(message.link, time: message.time, messageId: messageId) }
        if message.previousLink >= 0 { noteLink(message.previousLink, time: message.time, messageId: messageId) }
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
