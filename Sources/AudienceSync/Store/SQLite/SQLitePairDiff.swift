import Foundation

/// Diffs a pair in one pass: a merge join of the current state — the definition's statement, whose
/// rows come sorted by user id — with the snapshot read in its primary key's order and the pair's
/// pending outbox work laid over it (that is what the snapshot becomes once the work is
/// delivered). The changes go, in user-id order, into `temp.sync_changes`, from which the store
/// reads them (`SyncStateStore.stagedChanges`, `writeRun`).
///
/// The temporary table lives in SQLite's temp database, never in the store's file, so this works,
/// and changes nothing, on a read-only connection. Only the changes are written; the members and
/// the snapshot are streamed, compared as SQLite's bytes: a `String` is made for no row.
struct SQLitePairDiff {
    let database: Database

    /// The pair's pending outbox rows (`?1` key, `?2` destination): the changes a sync decided on
    /// that are not resolved yet, each with `user_id, value, removes, id`, by user id and then id,
    /// so that for a user the last row is the one in force.
    static let pendingOutboxRows = """
        SELECT user_id, value, removes, id FROM outbox
        WHERE \(SQLiteSyncState.pendingOfBoundPair)
        ORDER BY user_id, id
        """

    /// Diffs the request's pair into `temp.sync_changes` and returns the counts and a sample.
    func stage(_ request: DiffRequest) throws -> PairDiff {
        let counts = try load(request)
        return PairDiff(counts: counts, sample: try sample(limit: request.sampleSize))
    }

    private func load(_ request: DiffRequest) throws -> PairCounts {
        // One transaction for the whole diff (a savepoint, so that it nests in a caller's too). In
        // autocommit mode each change written to the temp table is a transaction of its own, whose
        // commit walks the temp database's page cache: that was most of the diff's time once the
        // cache filled, and three times as much on a connection that had diffed before.
        try database.execute("SAVEPOINT pair_diff")
        do {
            let counts = try merge(request)
            try database.execute("RELEASE pair_diff")
            return counts
        } catch {
            // Only the temporary table was written; the diff's error is the one to report.
            try? database.execute("ROLLBACK TO pair_diff; RELEASE pair_diff")
            throw error
        }
    }

    private func merge(_ request: DiffRequest) throws -> PairCounts {
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
        let current = try database.prepare(request.members.sql)
        defer { current.reset() }
        try current.bind(request.members.binds.map(SQLiteValue.init))
        let pairParameters: [SQLiteValue] = [.text(request.pair.key), .text(request.pair.destination)]
        // The primary key's order: no sort.
        let snapshot = try database.prepare(
            "SELECT user_id, value FROM snapshots WHERE key = ?1 AND destination = ?2 ORDER BY user_id")
        defer { snapshot.reset() }
        try snapshot.bind(pairParameters)
        let pending = try database.prepare(Self.pendingOutboxRows)
        defer { pending.reset() }
        try pending.bind(pairParameters)
        let insert = try database.prepare(
            "INSERT INTO temp.sync_changes (user_id, value, kind, removes) VALUES (?1, ?2, ?3, ?4)")
        let audience = request.kind == .audience
        let gone = RowBytes(audience ? "false" : "null")

        let members = try MergeInput(statement: current, constantValue: audience ? "true" : nil)
        let synced = try MergeInput(statement: snapshot)
        let queued = try MergeInput(statement: pending, removesColumn: 2)
        var counts = PairCounts()
        func record(_ user: RowBytes, _ value: RowBytes, _ kind: PairChange.Kind, removes: Bool) throws {
            try insert.bindText(UnsafeRawBufferPointer(user.buffer), at: 1)
            try insert.bindText(UnsafeRawBufferPointer(value.buffer), at: 2)
            try insert.bind(.text(kind.rawValue), at: 3)
            try insert.bindInt64(removes ? 1 : 0, at: 4)
            try insert.step()
            insert.reset()
        }
        while true {
            // The next user of the snapshot with pending work applied: the snapshot's entry, the
            // pending work's, or, for a user in both, the pending work's (what the snapshot becomes).
            let base: MergeInput?
            var baseAlsoInSnapshot = false
            switch (synced.hasEntry, queued.hasEntry) {
            case (false, false): base = nil
            case (true, false): base = synced
            case (false, true): base = queued
            case (true, true):
                let order = compareBytes(synced.user.buffer, queued.user.buffer)
                base = order < 0 ? synced : queued
                baseAlsoInSnapshot = order == 0
            }
            func advanceBase() throws {
                try base?.advance()
                if baseAlsoInSnapshot { try synced.advance() }
            }
            switch (members.hasEntry, base) {
            case (false, nil):
                counts.synced = synced.rows
                counts.pending = queued.rows
                return counts
            case (true, nil):
                counts.members += 1
                counts.entered += 1
                try record(members.user, members.value, .entered, removes: false)
                try members.advance()
            case (false, let old?):
                if !old.removes {
                    counts.exited += 1
                    try record(old.user, gone, .exited, removes: true)
                }
                try advanceBase()
            case (true, let old?):
                let order = compareBytes(members.user.buffer, old.user.buffer)
                if order < 0 {
                    counts.members += 1
                    counts.entered += 1
                    try record(members.user, members.value, .entered, removes: false)
                    try members.advance()
                } else if order > 0 {
                    if !old.removes {
                        counts.exited += 1
                        try record(old.user, gone, .exited, removes: true)
                    }
                    try advanceBase()
                } else {
                    counts.members += 1
                    if old.removes {
                        counts.entered += 1
                        try record(members.user, members.value, .entered, removes: false)
                    } else if compareBytes(old.value.buffer, members.value.buffer) != 0 {
                        counts.changed += 1
                        try record(members.user, members.value, .changed, removes: false)
                    } else {
                        counts.unchanged += 1
                    }
                    try members.advance()
                    try advanceBase()
                }
            }
        }
    }

    /// The staged changes after position `position` (their `seq` is the position, from 1), at most `limit`.
    func changes(from position: Int, limit: Int) throws -> [PairChange] {
        let statement = try database.prepare(
            "SELECT user_id, value, kind, removes FROM temp.sync_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        var changes: [PairChange] = []
        try statement.forEachRow([.integer(Int64(position)), .integer(Int64(limit))]) { row in
            guard let userId = row.text(0), let value = row.text(1), let kind = row.text(2).flatMap(PairChange.Kind.init)
            else { return }
            changes.append(PairChange(userId: userId, kind: kind, value: value, removes: row.int64(3) == 1))
        }
        return changes
    }

    /// Up to `limit` user ids per kind of change, by user id.
    private func sample(limit: Int) throws -> [PairChange.Kind: [String]] {
        var result: [PairChange.Kind: [String]] = [:]
        let statement = try database.prepare(
            "SELECT user_id FROM temp.sync_changes WHERE kind = ?1 ORDER BY seq LIMIT ?2")
        for kind in [PairChange.Kind.entered, .exited, .changed] {
            result[kind] = try statement.rows([.text(kind.rawValue), .integer(Int64(limit))]).compactMap { $0[0].string }
        }
        return result
    }
}

/// One input of the differ's merge: a statement's rows `(user_id[, value[, removes]])` sorted by
/// user id in SQLite's byte order, with consecutive rows of the same user collapsed into the last
/// one. Rows with a NULL user id or value are skipped (no one to send to, nothing to send).
///
/// The entry under the cursor is copied out of SQLite's row, since the input steps one row past it
/// to see whether the next row is the same user's; no `String` is made.
private final class MergeInput {
    let statement: Statement
    let row: Row
    /// Nil when every row has the same value (an audience's members: `true`).
    let valueColumn: Int?
    let removesColumn: Int?
    /// The entry under the cursor (meaningful while `hasEntry`).
    let user = RowBytes()
    let value: RowBytes
    private(set) var removes = false
    private(set) var hasEntry = false
    /// Rows stepped over so far, skipped ones included.
    private(set) var rows = 0
    /// Whether the statement stands on a row not taken yet: the first of the next user.
    private var standsOnRow = false
    /// That row's user id and value, in SQLite's buffers (valid until the next step).
    private var rowUser = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    private var rowValue = UnsafeBufferPointer<UInt8>(start: nil, count: 0)

    init(statement: Statement, constantValue: String? = nil, removesColumn: Int? = nil) throws {
        self.statement = statement
        row = Row(statement: statement)
        value = RowBytes(constantValue ?? "")
        valueColumn = constantValue == nil ? 1 : nil
        self.removesColumn = removesColumn
        try stepToUsableRow()
        try advance()
    }

    /// Moves to the next user. A statement whose rows are not in user-id order is a bug the merge
    /// cannot survive (it would report phantom changes), so it stops with an error.
    func advance() throws {
        guard standsOnRow else {
            hasEntry = false
            return
        }
        take()
        hasEntry = true
        while try stepToUsableRow() {
            let order = compareBytes(rowUser, user.buffer)
            if order > 0 { return }
            guard order == 0 else { throw AudienceSyncError(.store, "the diff's input is not ordered by user id") }
            take()
        }
    }

    /// Copies the row the statement stands on into the entry.
    private func take() {
        user.assign(rowUser)
        if valueColumn != nil { value.assign(rowValue) }
        removes = removesColumn.map { row.int64($0) == 1 } ?? false
    }

    @discardableResult
    private func stepToUsableRow() throws -> Bool {
        while try statement.step() {
            rows += 1
            guard let user = row.textBytes(0) else { continue }
            if let valueColumn {
                guard let value = row.textBytes(valueColumn) else { continue }
                rowValue = value
            }
            rowUser = user
            standsOnRow = true
            return true
        }
        standsOnRow = false
        return false
    }
}

/// Bytes copied out of a row, kept across steps (SQLite's own buffer for a column is not).
/// Reused from row to row: it grows, and never shrinks.
private final class RowBytes {
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(_ text: String = "") {
        capacity = max(64, text.utf8.count)
        storage = .allocate(capacity: capacity)
        var text = text
        text.withUTF8 { assign($0) }
    }

    deinit { storage.deallocate() }

    var buffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: storage, count: count) }

    func assign(_ bytes: UnsafeBufferPointer<UInt8>) {
        if bytes.count > capacity {
            storage.deallocate()
            capacity = max(bytes.count, capacity * 2)
            storage = .allocate(capacity: capacity)
        }
        if let base = bytes.baseAddress, bytes.count > 0 { storage.update(from: base, count: bytes.count) }
        count = bytes.count
    }
}

/// SQLite's BINARY order (memcmp, then the shorter first): negative when `left` comes first, 0 when
/// the bytes are equal. Swift's `<` and `==` on strings are not bytewise.
private func compareBytes(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
    let common = min(left.count, right.count)
    if common > 0, let l = left.baseAddress, let r = right.baseAddress {
        let order = memcmp(l, r, common)
        if order != 0 { return Int(order) }
    }
    return left.count - right.count
}
