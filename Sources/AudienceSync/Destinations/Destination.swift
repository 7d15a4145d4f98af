/// One message on its way to a destination, as the outbox holds it.
public struct OutboundMessage: Sendable, Equatable {
    /// The outbox row.
    public var id: Int64
    public var userId: String
    public var messageId: String
    /// The message as compact JSON text, exactly as it is sent (and re-sent).
    public var body: String

    public init(id: Int64, userId: String, messageId: String, body: String) {
        self.id = id
        self.userId = userId
        self.messageId = messageId
        self.body = body
    }
}

/// What a destination made of one message of a batch.
public enum DeliveryResult: Sendable, Equatable {
    /// Durably accepted: the change may be applied to the snapshot.
    case acknowledged
    /// Refused for good (retrying would not help); the change stays out of the snapshot.
    case failed(reason: String)
}

/// Where membership changes are sent (SPEC §6.2).
///
/// `deliver` returns one result per message, in order. Throwing means the outcome of the whole
/// batch is unknown (a network error after retries, a crash of the receiver): nothing is applied,
/// the messages stay pending and a later run sends them again with the same messageIds.
public protocol Destination: AnyObject {
    func deliver(_ batch: [OutboundMessage]) throws -> [DeliveryResult]
}
