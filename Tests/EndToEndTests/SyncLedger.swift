import AudienceSync
import Foundation
import LoopbackReceiver

/// One user's value of one definition at one destination.
struct Slot: Hashable, CustomStringConvertible {
    var destination: String
    var key: String
    var user: String

    var description: String { "\(key) → \(destination) for \(user)" }
}

/// A JSON value as text, with numbers written by value (`20`, `20.0` and `2e1` are one value), so
/// that values from the receiver, the store and `members` compare whoever wrote them.
func canonicalValue(_ text: String) -> String {
    guard let value = try? JSONValue.parse(text) else { return "unparsable: " + text }
    return canonicalValue(value)
}

func canonicalValue(_ value: JSONValue) -> String {
    if case .number(let text) = value, let number = Double(text) { return "number:\(number)" }
    return value.jsonString
}

/// What the store holds after a run, read on a read-only store of its own.
struct StoreView: Equatable {
    struct OutboxRow: Equatable {
        var id: Int64
        var runId: Int64
        var slot: Slot
        var value: String
        var removes: Bool
        var messageId: String
        var message: String
        var state: String
        var createdAt: Int64

        /// The canonical value acknowledging this row leaves at the destination; nil for a removal.
        var resultingValue: String? { removes ? nil : canonicalValue(value) }
    }

    var outbox: [OutboxRow]
    /// Canonical values.
    var snapshot: [Slot: String]

    /// The outbox (each row with its effective state and its message) and the snapshots of `store`.
    init(_ store: TestStore) async throws {
        // SQLite keeps the message text in a table of its own; PostgreSQL on the outbox row.
        let messages =
            store.kind == .sqlite
            ? "LEFT JOIN outbox_messages m ON m.id = o.id" : "LEFT JOIN outbox m ON m.id = o.id"
        outbox = try await store.rows(
            """
            SELECT o.id, o.run_id, o.key, o.destination, o.user_id, o.value, o.removes, o.message_id, m.message, o.state,
                o.created_at
            FROM outbox_states o \(messages) ORDER BY o.id
            """
        ).map { (row: [SQLValue]) -> OutboxRow in
            OutboxRow(
                id: row[0].int64 ?? -1, runId: row[1].int64 ?? -1,
                slot: Slot(destination: row[3].string ?? "?", key: row[2].string ?? "?", user: row[4].string ?? "?"),
                value: row[5].string ?? "?", removes: row[6] == .integer(1) || row[6] == .boolean(true),
                messageId: row[7].string ?? "?", message: row[8].string ?? "?", state: row[9].string ?? "?",
                createdAt: row[10].int64 ?? -1)
        }
        var snapshot: [Slot: String] = [:]
        for row in try await store.rows("SELECT key, destination, user_id, value FROM snapshots") {
            let slot = Slot(destination: row[1].string ?? "?", key: row[0].string ?? "?", user: row[2].string ?? "?")
            snapshot[slot] = canonicalValue(row[3].string ?? "?")
        }
        self.snapshot = snapshot
    }

    var pending: [OutboxRow] { outbox.filter { $0.state == "pending" } }
    var lastOutboxId: Int64 { outbox.last?.id ?? 0 }

    /// Pending rows in the order a sync resumes them (and `diff --format ndjson` lists them):
    /// pairs by their oldest pending row, each pair's rows by id.
    var pendingInResumeOrder: [OutboxRow] {
        func pair(_ row: OutboxRow) -> [String] { [row.slot.key, row.slot.destination] }
        var oldest: [[String]: Int64] = [:]
        for row in pending where oldest[pair(row)] == nil { oldest[pair(row)] = row.id }
        return pending.sorted { (oldest[pair($0)]!, $0.id) < (oldest[pair($1)]!, $1.id) }
    }
}

/// What the receiver acknowledged, slot by slot, in the order it acknowledged it: the truth the
/// snapshot is checked against.
struct Ledger {
    struct Entry {
        /// Canonical value; nil for a removal (`false` for an audience, `null` for a computed trait).
        var value: String?
        var messageId: String
    }

    /// Acknowledgements per slot, oldest first.
    private(set) var history: [Slot: [Entry]] = [:]
    private(set) var acknowledgedIds: Set<String> = []
    /// How many times each messageId was acknowledged (more than once: a re-send a deduplicating
    /// destination absorbs).
    private(set) var acknowledgements: [String: Int] = [:]
    private var consumed = 0

    /// Takes in the acknowledgements since the last call. `destination` names the destination of a
    /// request path; `isAudience` tells how a key's removal is written.
    mutating func update(
        from receiver: LoopbackReceiver, destination: (String) -> String, isAudience: (String) -> Bool
    ) {
        let acknowledged = receiver.acknowledgedRequests
        for request in acknowledged.dropFirst(consumed) {
            for message in request.messages {
                guard let text = try? JSONValue.parse(message.text), let user = text["userId"]?.stringValue,
                    case .object(let traits)? = text["traits"], let trait = traits.first, let id = message.messageId
                else { continue }
                let removal = isAudience(trait.key) ? trait.value == .bool(false) : trait.value == .null
                history[Slot(destination: destination(request.uri), key: trait.key, user: user), default: []].append(
                    Entry(value: removal ? nil : canonicalValue(trait.value), messageId: id))
                acknowledgedIds.insert(id)
                acknowledgements[id, default: 0] += 1
            }
        }
        consumed = acknowledged.count
    }

    /// The value the destination holds now for `slot`; nil when it holds none.
    func latest(_ slot: Slot) -> String? { history[slot]?.last?.value }

    /// Whether `value` was acknowledged for `slot` at some point.
    func everAcknowledged(_ value: String, for slot: Slot) -> Bool {
        history[slot]?.contains { $0.value == value } ?? false
    }

    var slots: Set<Slot> { Set(history.keys) }
}
