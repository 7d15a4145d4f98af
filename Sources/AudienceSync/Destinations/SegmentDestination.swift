import Foundation
import Logging

/// The `segment` destination: the Segment HTTP Tracking API's batch call, or any collector that
/// speaks it (RudderStack, Jitsu, …) at `endpoint` (SPEC §6.2).
///
/// Messages go as `{"batch": [...], "sentAt": ...}` with HTTP Basic auth (the write key as user
/// name, an empty password). A request holds at most `maxBatchMessages` messages and
/// `maxBatchBytes` bytes; a message over `maxMessageBytes` is failed for good without being sent.
/// A 2xx answer acknowledges every message of its request; a final refusal fails them all.
public final class SegmentDestination: Destination {
    /// Segment's limit of messages per batch call.
    public static let maxBatchMessages = 2_500
    /// Bytes per request body. Segment allows 500 KB; this stays under it whichever way a "KB" is
    /// counted, with the envelope included.
    public static let maxBatchBytes = 500_000
    /// Segment's limit of one message: 32 KB, the limit of every message a sync sends.
    public static let maxMessageBytes = SyncMessage.maximumBytes

    let delivery: HTTPDelivery
    /// The `sentAt` of every request: the time a request is built, in milliseconds.
    private let clock: @Sendable () -> Int64

    /// `writeKey` is the resolved secret; it goes into the Authorization header only. Throws a
    /// configuration error for an endpoint that is plain http to a host other than loopback.
    public init(
        configuration: DestinationConfiguration, writeKey: String, hooks: HTTPDeliveryHooks = .live,
        clock: @escaping @Sendable () -> Int64 = Timestamp.now, logger: Logger
    ) throws {
        let url = configuration.endpoint ?? DestinationConfiguration.Kind.segment.defaultEndpoint!
        let credentials = Data("\(writeKey):".utf8).base64EncodedString()
        delivery = try HTTPDelivery(
            configuration: configuration, url: url, headers: [("Authorization", "Basic \(credentials)")],
            redactions: [writeKey, credentials], hooks: hooks, logger: logger)
        self.clock = clock
    }

    /// A full batch request for each request allowed in flight.
    public var preferredBatchSize: Int? { Self.maxBatchMessages * delivery.concurrency }

    public func deliver(_ batch: [OutboundMessage]) async throws -> [DeliveryResult] {
        var results = [DeliveryResult?](repeating: nil, count: batch.count)
        var sendable: [Int] = []
        for (index, message) in batch.enumerated() {
            let size = message.body.utf8.count
            if size > Self.maxMessageBytes {
                results[index] = .failed(
                    reason: "message of \(size) bytes is over Segment's limit of \(Self.maxMessageBytes) bytes; not sent")
            } else {
                sendable.append(index)
            }
        }
        let chunks = Self.split(sendable.map { batch[$0].body.utf8.count }).map { $0.map { sendable[$0] } }
        let bodies = chunks.map { chunk in chunk.map { batch[$0].body } }
        let sentAt = Timestamp.format(clock())
        let outcomes = await delivery.sendAll(count: bodies.count) { Self.requestBody(bodies[$0], sentAt: sentAt) }
        for (chunk, outcome) in zip(chunks, outcomes) {
            let result: DeliveryResult
            switch outcome {
            case .delivered: result = .acknowledged
            case .refused(let reason): result = .failed(reason: "\(delivery.displayURL) refused the batch: \(reason)")
            case .gaveUp(let reason): result = .pending(reason: "\(delivery.displayURL): \(reason)")
            }
            for index in chunk { results[index] = result }
        }
        return results.map { $0 ?? .pending(reason: "not sent") }
    }

    public func close() async { await delivery.shutdown() }

    /// Bytes of `{"batch":[` … `],"sentAt":"2026-11-22T12:00:00.000Z"}` around the messages.
    static let envelopeBytes = requestBody([], sentAt: Timestamp.format(0)).count

    /// Groups messages of the given sizes, in order, into requests within both limits.
    static func split(_ sizes: [Int], maxMessages: Int = maxBatchMessages, maxBytes: Int = maxBatchBytes) -> [[Int]] {
        var chunks: [[Int]] = []
        var current: [Int] = []
        var bytes = envelopeBytes
        for (index, size) in sizes.enumerated() {
            let added = size + (current.isEmpty ? 0 : 1)  // the comma
            if !current.isEmpty && (current.count >= maxMessages || bytes + added > maxBytes) {
                chunks.append(current)
                current = []
                bytes = envelopeBytes
            }
            bytes += size + (current.isEmpty ? 0 : 1)
            current.append(index)
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// The request body; the messages are spliced in as the outbox holds them, byte for byte.
    static func requestBody(_ messages: [String], sentAt: String) -> [UInt8] {
        var bytes = Array(#"{"batch":["#.utf8)
        for (index, message) in messages.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: message.utf8)
        }
        bytes.append(contentsOf: #"],"sentAt":"#.utf8)
        JSONValue.writeString(sentAt, into: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
