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
    /// Not delivered this time (the destination stayed unreachable or overloaded after every
    /// retry): the message stays pending and a later run sends it again with the same messageId.
    case pending(reason: String)
}

/// Where membership changes are sent (SPEC §6.2).
///
/// `deliver` returns one result per message, in order. Throwing means the outcome of the whole
/// batch is unknown (a crash of the receiver mid-write): nothing is applied, the messages stay
/// pending and a later run sends them again with the same messageIds.
public protocol Destination: AnyObject, Sendable {
    /// Messages per `deliver` call this destination works best with (a Segment destination sends
    /// several batch requests in parallel); nil leaves it to the syncer.
    var preferredBatchSize: Int? { get }

    func deliver(_ batch: [OutboundMessage]) async throws -> [DeliveryResult]

    /// Releases what the destination holds (connections). Called once, when the sync is done with it.
    func close() async
}

extension Destination {
    public var preferredBatchSize: Int? { nil }
    public func close() async {}
}
