import Foundation

/// The counts of a pair's diff (SPEC §7): current state against the snapshot with pending outbox
/// work applied, which is what the snapshot will be once that work is delivered.
public struct PairCounts: Sendable, Equatable {
    /// Members now (audience) or users with a value now (computed trait).
    public var members = 0
    /// Rows of the acknowledged snapshot.
    public var synced = 0
    /// Audience: users who join; computed trait: users who get a value they had none of.
    public var entered = 0
    /// Audience: users who leave; computed trait: users whose value is gone (sent as null).
    public var exited = 0
    /// Computed trait: users whose value changes (always 0 for audiences).
    public var changed = 0
    public var unchanged = 0
    /// Messages of earlier runs still waiting to be delivered.
    public var pending = 0

    public var changes: Int { entered + exited + changed }
}

/// One change of a pair's diff.
public struct PairChange: Sendable, Equatable {
    public enum Kind: String, Sendable { case entered, exited, changed }
    public var userId: String
    public var kind: Kind
    /// The value to send, JSON text (`true`, `false`, `null`, `78.99`, …).
    public var value: String
    /// Whether acknowledging the change removes the user from the snapshot.
    public var removes: Bool
}

/// Diffs a pair in one pass: a merge join of the current state, sorted by user id, with the
/// snapshot read in its primary key's order (pending outbox work laid over it, since that is what
/// the snapshot becomes once the work is delivered). The changes go, in user-id order, into
/// `temp.sync_changes`, from which the caller reads them (`forEachChange`, `sample`).
///
/// The temporary table lives in SQLite's temp database, never in the store's file, so this works,
/// and changes nothing, on a read-only connection. Only the changes are written; the members and
/// the snapshot are streamed.
final class PairDiffer {
    let database: Database
    let engine: MembershipEngine

    init(engine: MembershipEngine) throws {
        self.engine = engine
        self.database = engine.store.database
    }

    /// Diffs `pair` at `now` into `temp.sync_changes` and returns the counts.
    func load(_ pair: SyncPair, now: Int64) throws -> PairCounts {
        // A new table each time: dropping frees the last diff's pages at once, where deleting
        // its rows one by one would cost as much as writing them.
        try database.execute(
            """
            DROP TABLE IF EXISTS temp.sync_changes;
            CREATE TEMP TABLE sync_changes (
                seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL,
                removes INTEGER NOT NULL
            );
            """)
        // The engine's statement as it is: it returns `uid` (audience) or `uid, value` (computed
        // trait) ordered by uid; wrapping it would make SQLite sort a million rows again.
        let (sql, parameters) = try engine.statement(key: pair.key, now: now)
        let current = try database.prepare(sql)
        defer { current.reset() }
        try current.bind(Array(parameters.prefix(current.parameterCount)))
        // The snapshot in key order, then each pending outbox row of the pair by id: for a user,
        // the last row read is what the snapshot will hold (or lose, when it removes).
        let base = try database.prepare(
            """
            SELECT user_id, value, 0, 0 FROM snapshots WHERE key = ?1 AND destination = ?2
            UNION ALL
            SELECT user_id, value, removes, id FROM outbox WHERE \(SyncState.pendingOfBoundPair)
            ORDER BY 1, 4
            """)
        defer { base.reset() }
        try base.bind([.text(pair.key), .text(pair.destination.name)])
        let insert = try database.prepare(
            "INSERT INTO temp.sync_changes (user_id, value, kind, removes) VALUES (?1, ?2, ?3, ?4)")
        let audience = pair.definition.kind == .audience
        let gone = audience ? "false" : "null"

        var counts = PairCounts()
        var currentCursor = try MergeCursor(statement: current, constantValue: audience ? "true" : nil) { _ in }
        var baseCursor = try MergeCursor(statement: base) { row in
            if row.int64(3) == 0 { counts.synced += 1 } else { counts.pending += 1 }
        }
        func record(_ userId: String, _ value: String, _ kind: PairChange.Kind, removes: Bool) throws {
            try insert.execute([.text(userId), .text(value), .text(kind.rawValue), .integer(removes ? 1 : 0)])
        }
        while true {
            switch (currentCursor.entry, baseCursor.entry) {
            case (nil, nil):
                return counts
            case (let member?, nil):
                counts.members += 1
                counts.entered += 1
                try record(member.userId, member.value, .entered, removes: false)
                try currentCursor.advance()
            case (nil, let synced?):
                if !synced.removes {
                    counts.exited += 1
                    try record(synced.userId, gone, .exited, removes: true)
                }
                try baseCursor.advance()
            case (let member?, let synced?):
                let order = MergeCursor.compare(member.userId, synced.userId)
                if order < 0 {
                    counts.members += 1
                    counts.entered += 1
                    try record(member.userId, member.value, .entered, removes: false)
                    try currentCursor.advance()
                } else if order > 0 {
                    if !synced.removes {
                        counts.exited += 1
                        try record(synced.userId, gone, .exited, removes: true)
                    }
                    try baseCursor.advance()
                } else {
                    counts.members += 1
                    if synced.removes {
                        counts.entered += 1
                        try record(member.userId, member.value, .entered, removes: false)
                    } else if !MergeCursor.same(synced.value, member.value) {
                        counts.changed += 1
                        try record(member.userId, member.value, .changed, removes: false)
                    } else {
                        counts.unchanged += 1
                    }
                    try currentCursor.advance()
                    try baseCursor.advance()
                }
            }
        }
    }

    /// Calls `body` for each change of the pair last loaded, by user id.
    func forEachChange(_ pair: SyncPair, _ body: (PairChange) throws -> Void) throws {
        let statement = try database.prepare("SELECT user_id, value, kind, removes FROM temp.sync_changes ORDER BY seq")
        try statement.forEachRow { row in
            guard let userId = row.text(0), let value = row.text(1), let kind = row.text(2).flatMap(PairChange.Kind.init)
            else { return }
            try body(PairChange(userId: userId, kind: kind, value: value, removes: row.int64(3) == 1))
        }
    }

    /// Up to `limit` user ids per kind of change, by user id.
    func sample(_ pair: SyncPair, limit: Int) throws -> [PairChange.Kind: [String]] {
        var result: [PairChange.Kind: [String]] = [:]
        let statement = try database.prepare(
            "SELECT user_id FROM temp.sync_changes WHERE kind = ?1 ORDER BY seq LIMIT ?2")
        for kind in [PairChange.Kind.entered, .exited, .changed] {
            result[kind] = try statement.rows([.text(kind.rawValue), .integer(Int64(limit))]).compactMap { $0[0].string }
        }
        return result
    }
}

/// One side of the differ's merge: a statement's rows `(user_id[, value[, removes, order]])` sorted
/// by user id, with consecutive rows of the same user collapsed into the last one. Rows with a NULL
/// user id or value are skipped (no one to send to, nothing to send).
private struct MergeCursor {
    struct Entry {
        var userId: String
        var value: String
        var removes: Bool
    }

    let statement: Statement
    /// The value of every row, for a statement of user ids only (an audience's members).
    let constantValue: String?
    let counted: (Row) -> Void
    /// The entry under the cursor; nil at the end.
    private(set) var entry: Entry?
    /// The first row of the next user, already stepped to.
    private var lookahead: Entry?
    private var done = false

    init(statement: Statement, constantValue: String? = nil, counted: @escaping (Row) -> Void) throws {
        self.statement = statement
        self.constantValue = constantValue
        self.counted = counted
        lookahead = try read()
        try advance()
    }

    /// Moves to the next user. A statement whose rows are not in user-id order is a bug the merge
    /// cannot survive (it would report phantom changes), so it stops with an error.
    mutating func advance() throws {
        guard var next = lookahead else {
            entry = nil
            return
        }
        while let row = try read() {
            let order = Self.compare(next.userId, row.userId)
            if order == 0 {
                next = row
                continue
            }
            guard order < 0 else {
                throw AudienceSyncError(.database, "the diff's input is not ordered by user id")
            }
            lookahead = row
            entry = next
            return
        }
        lookahead = nil
        entry = next
    }

    private mutating func read() throws -> Entry? {
        while !done {
            guard try statement.step() else {
                done = true
                return nil
            }
            let row = Row(statement: statement)
            counted(row)
            guard let userId = row.text(0), let value = constantValue ?? row.text(1) else { continue }
            return Entry(userId: userId, value: value, removes: row.count > 2 && row.int64(2) == 1)
        }
        return nil
    }

    /// SQLite's BINARY order (memcmp, then the shorter first): negative when `left` comes first,
    /// 0 when the bytes are equal. Swift's `<` and `==` on strings are not bytewise.
    static func compare(_ left: String, _ right: String) -> Int {
        var left = left
        var right = right
        return left.withUTF8 { l in
            right.withUTF8 { r in
                let common = min(l.count, r.count)
                if common > 0, let lb = l.baseAddress, let rb = r.baseAddress {
                    let order = memcmp(lb, rb, common)
                    if order != 0 { return Int(order) }
                }
                return l.count - r.count
            }
        }
    }

    /// Byte-for-byte equality, as SQLite compares text.
    static func same(_ left: String, _ right: String) -> Bool {
        compare(left, right) == 0
    }
}
