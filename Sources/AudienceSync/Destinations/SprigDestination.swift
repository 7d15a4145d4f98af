import Logging

/// The `sprig` destination: Sprig's user API, one user per request (SPEC §6.2).
///
/// Each message becomes `{"userId": ..., "attributes": {...}}` from the identify's traits, with
/// nested objects flattened to dotted keys (`{"plan": {"tier": "pro"}}` → `{"plan.tier": "pro"}`),
/// sent with `Authorization: Bearer <api_key>`. Any 2xx acknowledges it (Sprig answers 202). A
/// `null` is sent as `null`: Sprig keeps the attribute's last value, it does not remove it.
/// Requests run `concurrency` at a time.
public final class SprigDestination: Destination {
    let delivery: HTTPDelivery

    /// `apiKey` is the resolved secret; it goes into the Authorization header only. Throws a
    /// configuration error for an endpoint that is plain http to a host other than loopback.
    public init(
        configuration: DestinationConfiguration, apiKey: String, hooks: HTTPDeliveryHooks = .live, logger: Logger
    ) throws {
        let url = configuration.endpoint ?? DestinationConfiguration.Kind.sprig.defaultEndpoint!
        delivery = try HTTPDelivery(
            configuration: configuration, url: url, headers: [("Authorization", "Bearer \(apiKey)")],
            redactions: [apiKey], hooks: hooks, logger: logger)
    }

    public func deliver(_ batch: [OutboundMessage]) async throws -> [DeliveryResult] {
        var results = [DeliveryResult?](repeating: nil, count: batch.count)
        var bodies: [[UInt8]] = []
        var positions: [Int] = []
        for (index, message) in batch.enumerated() {
            do {
                bodies.append(try Self.requestBody(message))
                positions.append(index)
            } catch {
                results[index] = .failed(reason: "cannot turn the message into Sprig attributes: \(error)")
            }
        }
        let requests = bodies
        let outcomes = await delivery.sendAll(count: requests.count) { requests[$0] }
        for (index, outcome) in zip(positions, outcomes) {
            switch outcome {
            case .delivered: results[index] = .acknowledged
            case .refused(let reason): results[index] = .failed(reason: "\(delivery.displayURL) refused the user: \(reason)")
            case .gaveUp(let reason): results[index] = .pending(reason: "\(delivery.displayURL): \(reason)")
            }
        }
        return results.map { $0 ?? .pending(reason: "not sent") }
    }

    public func close() async { await delivery.shutdown() }

    /// `{"userId": ..., "attributes": {...}}` for an outbox message: its identify traits (or, for a
    /// track message, its properties), flattened.
    static func requestBody(_ message: OutboundMessage) throws -> [UInt8] {
        let parsed = try JSONValue.parse(message.body)
        let source = parsed["traits"] ?? parsed["properties"] ?? .object([])
        var attributes: [JSONValue.Member] = []
        flatten(source, prefix: nil, into: &attributes)
        let body = JSONValue.object([
            JSONValue.Member("userId", .string(message.userId)), JSONValue.Member("attributes", .object(attributes)),
        ])
        return Array(body.jsonString.utf8)
    }

    /// Appends `value` under `prefix`, descending into objects with `prefix.key`. Arrays and scalars
    /// (null included) are kept as they are; an empty object adds nothing.
    static func flatten(_ value: JSONValue, prefix: String?, into attributes: inout [JSONValue.Member]) {
        guard case .object(let members) = value else {
            if let prefix { attributes.append(JSONValue.Member(prefix, value)) }
            return
        }
        for member in members {
            flatten(member.value, prefix: prefix.map { "\($0).\(member.key)" } ?? member.key, into: &attributes)
        }
    }
}
