/// The changes of a pair's diff on a PostgreSQL store, in user-id order, kept in the store's
/// memory until the next diff (`SyncStateStore.stagedChanges`, `writeRun`).
///
/// SQLite keeps them in a temporary table of its one connection; a PostgreSQL store has no such
/// place that would do: each call may get another connection of the pool (a temporary table lives
/// on one), and a read-only store (`diff`) writes nothing to its schema. So the diff's statement
/// streams the changes here, kept compactly: the bytes of every user id and value one after
/// another, where each starts, and its kind — about 20 bytes a change beside the ids themselves,
/// no object and no `String` per change. The removals of a retire are held the same way.
struct PostgresStagedChanges: Sendable {
    let pair: PairName
    /// User id and value of every change, one after another.
    private var bytes: [UInt8] = []
    /// Change `i`'s user id is `bytes[starts[2i] ..< starts[2i + 1]]`, its value runs to `starts[2i + 2]`.
    private var starts: [Int] = [0]
    private var kinds: [PairChange.Kind] = []

    init(pair: PairName) {
        self.pair = pair
    }

    var count: Int { kinds.count }

    /// Appends a change; an exit is the one change that removes its user from the snapshot.
    mutating func append<UserId: Collection<UInt8>, Value: Collection<UInt8>>(
        userId: UserId, value: Value, kind: PairChange.Kind
    ) {
        bytes.append(contentsOf: userId)
        starts.append(bytes.count)
        bytes.append(contentsOf: value)
        starts.append(bytes.count)
        kinds.append(kind)
    }

    /// Change `index` (0 first).
    subscript(index: Int) -> PairChange {
        withBytes(of: index) { userId, value in
            PairChange(
                userId: String(decoding: userId, as: UTF8.self), kind: kinds[index],
                value: String(decoding: value, as: UTF8.self), removes: kinds[index] == .exited)
        }
    }

    /// The bytes of change `index`'s user id and value.
    func withBytes<T>(of index: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try bytes.withUnsafeBytes { all in
            try body(
                UnsafeRawBufferPointer(rebasing: all[starts[2 * index]..<starts[2 * index + 1]]),
                UnsafeRawBufferPointer(rebasing: all[starts[2 * index + 1]..<starts[2 * index + 2]]))
        }
    }

    /// Changes `position` (0 first) onwards, at most `limit`.
    func changes(from position: Int, limit: Int) -> [PairChange] {
        let start = max(0, position)
        guard start < count, limit > 0 else { return [] }
        return (start..<(start + min(count - start, limit))).map { self[$0] }
    }
}
