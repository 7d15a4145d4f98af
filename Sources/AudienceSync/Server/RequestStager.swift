/// The routes of the collection endpoint (SPEC §11.1).
enum CollectorRoute: Equatable, Sendable {
    /// `/v1/batch`, `/v1/import`, `/v1/b`: a batch envelope.
    case batch
    /// `/v1/track` … `/v1/alias` and `/v1/t` … `/v1/a`: one message of the route's type.
    case single(MessageType)
    /// `/v1/webhook`: one message or an array, signed.
    case webhook
    case health
    case metrics

    /// The route of a request path (its query, if any, left out); nil for an unknown path.
    init?(path: String) {
        var path = Substring(path)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        if path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        switch path {
        case "/v1/batch", "/v1/import", "/v1/b": self = .batch
        case "/v1/track", "/v1/t": self = .single(.track)
        case "/v1/identify", "/v1/i": self = .single(.identify)
        case "/v1/page", "/v1/p": self = .single(.page)
        case "/v1/screen", "/v1/s": self = .single(.screen)
        case "/v1/group", "/v1/g": self = .single(.group)
        case "/v1/alias", "/v1/a": self = .single(.alias)
        case "/v1/webhook": self = .webhook
        case "/health": self = .health
        case "/metrics": self = .metrics
        default: return nil
        }
    }

    /// The name metrics and logs give the route.
    var name: String {
        switch self {
        case .batch: return "batch"
        case .single(let type): return type.rawValue
        case .webhook: return "webhook"
        case .health: return "health"
        case .metrics: return "metrics"
        }
    }

    /// Whether clients post messages to it.
    var takesMessages: Bool {
        switch self {
        case .batch, .single, .webhook: return true
        case .health, .metrics: return false
        }
    }
}

/// A request body made into a batch to store, with the messages refused on their own.
struct StagedRequest: Sendable {
    /// The valid messages, not yet numbered (the committer numbers them as it queues them, in commit
    /// order).
    var batch: StagedBatch
    /// Each refused message's position (its index in the batch; 0 for a single message) and why.
    var rejected: [(index: Int, reason: String)]
    /// Messages in the body, valid or not.
    var messageCount: Int
    /// The bytes of the valid messages as stored (what waits in the commit queue).
    var bytes: Int { batch.arena.count }
}

/// Why a body could not be read as messages at all (400).
struct UnusableBody: Error, Sendable {
    var reason: String
}

/// Reads a request body as the route wants it and validates each message exactly as `ingest` does
/// (`MessageValidator`), with the server's rules (`Reception`): the route's type, the server's
/// `receivedAt` and clock-skew correction, the size of one message.
struct RequestStager: Sendable {
    var maxMessageBytes: Int
    /// What text the store cannot hold (`EventSink.textLimits`).
    var textLimits: StoredTextLimits = .none

    /// The `writeKey` in the body: the envelope's (batch routes) or the message's (single routes).
    static func writeKey(in body: [UInt8]) -> String? {
        body.withUnsafeBufferPointer { bytes in
            var scanner = JSONScanner(bytes)
            var members: [JSONMember] = []
            guard (try? scanner.scanObjectDocument(into: &members)) != nil,
                let member = members.first(where: { JSONScanner.key($0, in: bytes, equals: "writeKey") }),
                member.kind == .string
            else { return nil }
            let value = JSONScanner.decodeString(
                (member.value.lowerBound + 1)..<(member.value.upperBound - 1), in: bytes, escaped: member.valueIsEscaped)
            return value.isEmpty ? nil : value
        }
    }

    /// The body's messages, staged for `source`, received at `receivedAt`.
    func stage(_ body: [UInt8], route: CollectorRoute, receivedAt: Int64, source: String) throws(UnusableBody)
        -> StagedRequest
    {
        let outcome: Result<StagedRequest, UnusableBody> = body.withUnsafeBufferPointer { bytes in
            Result { () throws(UnusableBody) in try stage(bytes, route: route, receivedAt: receivedAt, source: source) }
        }
        return try outcome.get()
    }

    private func stage(_ bytes: UnsafeBufferPointer<UInt8>, route: CollectorRoute, receivedAt: Int64, source: String)
        throws(UnusableBody) -> StagedRequest
    {
        var scanner = JSONScanner(bytes)
        let kind: JSONKind
        do {
            kind = try scanner.validateDocument()
        } catch {
            throw UnusableBody(reason: "the body is not valid JSON: \(error)")
        }
        // Room is made once the number of messages is known: an ingest's default of 2,048 messages
        // (1.5 MB of arena) was allocated and freed for every single-message request.
        var request = StagedRequest(
            batch: StagedBatch(receivedAt: receivedAt, source: source, capacity: 0, arenaBytes: 0), rejected: [],
            messageCount: 0)
        /// Room for `count` messages: every text comes from the body, and each message adds the ids
        /// copied out of it, the server's `receivedAt` and perhaps its `type`.
        func makeRoom(for count: Int) {
            request.batch.reserveCapacity(messages: count, arenaBytes: bytes.count + count * Self.addedBytesPerMessage)
        }
        let validator = MessageValidator(ingestTime: receivedAt, textLimits: textLimits)
        let document = Self.trimmed(bytes)

        func add(_ range: Range<Int>, index: Int, routeType: MessageType?, envelope: EnvelopeDefaults?) {
            request.messageCount += 1
            guard let members = try? JSONScanner.members(of: range, in: bytes) else {
                request.rejected.append((index, "not a JSON object"))
                return
            }
            let reception = Reception(receivedAt: receivedAt, routeType: routeType, maxMessageBytes: maxMessageBytes)
            switch validator.validate(members: members, range: range, in: bytes, envelope: envelope, reception: reception) {
            case .success(let message): request.batch.append(message, from: bytes)
            case .failure(let rejection): request.rejected.append((index, rejection.reason))
            }
        }

        switch route {
        case .single(let type):
            guard kind == .object else { throw UnusableBody(reason: "the body must be a JSON object (got \(kind))") }
            makeRoom(for: 1)
            add(document, index: 0, routeType: type, envelope: nil)
        case .webhook:
            switch kind {
            case .object:
                makeRoom(for: 1)
                add(document, index: 0, routeType: nil, envelope: nil)
            case .array:
                guard let elements = try? JSONScanner.elements(of: document, in: bytes) else {
                    throw UnusableBody(reason: "the body is not valid JSON")
                }
                makeRoom(for: elements.count)
                for (index, element) in elements.enumerated() {
                    guard element.kind == .object else {
                        request.messageCount += 1
                        request.rejected.append((index, "not a JSON object (got \(element.kind))"))
                        continue
                    }
                    add(element.range, index: index, routeType: nil, envelope: nil)
                }
            default:
                throw UnusableBody(reason: "the body must be a message or an array of messages (got \(kind))")
            }
        case .batch:
            guard kind == .object, let members = try? JSONScanner.members(of: document, in: bytes) else {
                throw UnusableBody(reason: "the body must be a batch envelope {\"batch\": [...]} (got \(kind))")
            }
            guard let batch = members.first(where: { JSONScanner.key($0, in: bytes, equals: "batch") }),
                batch.kind == .array, let elements = try? JSONScanner.elements(of: batch.value, in: bytes)
            else {
                throw UnusableBody(reason: "the body must be a batch envelope with an array 'batch'")
            }
            guard let defaults = EnvelopeDefaults(members: members, in: bytes) else {
                throw UnusableBody(reason: EnvelopeDefaults.invalidSentAt)
            }
            makeRoom(for: elements.count)
            for (index, element) in elements.enumerated() {
                guard element.kind == .object else {
                    request.messageCount += 1
                    request.rejected.append((index, "not a JSON object (got \(element.kind))"))
                    continue
                }
                add(element.range, index: index, routeType: nil, envelope: defaults)
            }
        case .health, .metrics:
            throw UnusableBody(reason: "this route takes no messages")
        }
        guard request.messageCount > 0 else { throw UnusableBody(reason: "the body holds no messages") }
        return request
    }

    /// Arena bytes a message may take beyond its text in the body (ids, `receivedAt`, `type`); more
    /// only grows the arena.
    static let addedBytesPerMessage = 160

    /// The range of the document without the whitespace around it.
    private static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return start..<end
    }
}
