/// How a change of one pair becomes the message the outbox keeps and the destination receives
/// (SPEC §6.1): the one way messages are made, by `sync`'s and `retire`'s outbox writes and by the
/// dry run alike, so that what `diff` shows is byte for byte what `sync` sends.
///
/// What every message of the pair at one `now` shares is worked out once (`SyncMessage.Template`);
/// a messageId is a function of the pair, the user, the value and the run (`SyncMessage.MessageIDs`).
public struct OutboxMessageMaker: Sendable {
    public let key: String
    public let destination: String
    let template: SyncMessage.Template

    /// The maker of the messages of definition `key` (of `kind`) to `destination` at `now`.
    public init(key: String, kind: Definition.Kind, destination: DestinationConfiguration, spaceID: String?, now: Int64) {
        self.key = key
        self.destination = destination.name
        template = SyncMessage.Template(key: key, kind: kind, sendAs: destination.sendAs, spaceID: spaceID, now: now)
    }

    /// The maker of a pair's messages.
    public init(pair: SyncPair, spaceID: String?, now: Int64) {
        self.init(key: pair.key, kind: pair.definition.kind, destination: pair.destination, spaceID: spaceID, now: now)
    }

    /// The messageIds of run `runId`: the text shared by the run's ids is hashed once.
    func messageIDs(runId: Int64) -> SyncMessage.MessageIDs {
        SyncMessage.MessageIDs(key: key, destination: destination, runId: runId)
    }

    /// The message for `value` (JSON text) to `userId`, as run `runId` writes it.
    public func message(userId: String, value: String, runId: Int64) throws -> OutboxMessage {
        let messageId = messageIDs(runId: runId).id(userId: userId, value: value)
        var body: [UInt8] = []
        let invalid = try write(userId: userId, value: value, messageId: messageId, into: &body)
        return OutboxMessage(messageId: messageId, body: String(decoding: body, as: UTF8.self), invalidReason: invalid)
    }

    /// Writes the message's JSON text into `body`, replacing what it held (a buffer reused for
    /// every message of a run allocates once), and returns why it can never be sent, if it cannot.
    func write(userId: String, value: String, messageId: String, into body: inout [UInt8]) throws -> String? {
        template.write(userId: userId, value: try Self.value(of: value), messageId: messageId, into: &body)
        return SyncMessage.invalidReason(size: body.count)
    }

    /// Why the message for `value` to `userId` in run `runId` could never be sent, if it could not,
    /// from its size alone: neither its text is built nor its messageId hashed (for counting).
    public func invalidReason(userId: String, value: String, runId: Int64) throws -> String? {
        let size = template.textLength(
            userId: userId, value: try Self.value(of: value), messageIdLength: SyncMessage.messageIDLength(runId: runId))
        return SyncMessage.invalidReason(size: size)
    }

    /// A value's JSON text parsed (the common ones without parsing).
    static func value(of text: String) throws -> JSONValue {
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: return try JSONValue.parse(text)
        }
    }
}

/// A message as the outbox keeps it.
public struct OutboxMessage: Sendable, Equatable {
    public var messageId: String
    /// The compact JSON text sent, byte for byte.
    public var body: String
    /// Why it can never be sent (over 32 KB), or nil.
    public var invalidReason: String?
}
