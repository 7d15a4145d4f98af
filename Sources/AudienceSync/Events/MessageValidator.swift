import Crypto

/// A message that passed validation, ready to be stored.
public struct ValidMessage: Sendable {
    public var messageId: String
    /// True when the message had no `messageId` and one was derived from its content.
    public var messageIdIsDerived: Bool
    public var type: MessageType
    public var userId: String?
    public var anonymousId: String?
    /// `alias` only: the id being linked to `userId`.
    public var previousId: String?
    /// `event` of a track, `name` of a page or screen.
    public var eventName: String?
    /// Event time, epoch milliseconds UTC (SPEC §3.1 precedence).
    public var time: Int64
    /// The JSON stored for the message.
    public var body: Body

    public enum Body: Sendable {
        /// The message's own bytes, unchanged, at this range of the line.
        case line(Range<Int>)
        /// Rebuilt bytes: `writeKey` removed, or the batch envelope's `context`/`sentAt` added.
        case rebuilt([UInt8])
    }
}

/// What the batch envelope gives every message in it that lacks its own (SPEC §3.1).
struct EnvelopeDefaults {
    /// `"context": {...}` as it appears in the envelope.
    var context: JSONMember?
    /// `"sentAt": "..."` as it appears in the envelope.
    var sentAt: JSONMember?
    var sentAtTime: Int64?

    /// The defaults of a batch envelope whose top-level members are `members` (its `context` and
    /// `sentAt`; null counts as absent); nil when `sentAt` is not an ISO-8601 time with a zone.
    /// Ingest and the collection endpoint read envelopes with this one reader.
    init?(members: [JSONMember], in bytes: UnsafeBufferPointer<UInt8>) {
        for member in members {
            if JSONScanner.key(member, in: bytes, equals: "context"), member.kind != .null {
                context = member
            } else if JSONScanner.key(member, in: bytes, equals: "sentAt"), member.kind != .null {
                let inner = (member.value.lowerBound + 1)..<(member.value.upperBound - 1)
                guard member.kind == .string, let time = Timestamp.parse(UnsafeBufferPointer(rebasing: bytes[inner]))
                else { return nil }
                sentAt = member
                sentAtTime = time
            }
        }
    }

    static let invalidSentAt = "the envelope's 'sentAt' is not an ISO-8601 time with a zone"
}

/// How the collection endpoint receives a message (SPEC §11.1): when, by which route, and how large
/// one message may be. Ingest has none of these.
struct Reception: Sendable {
    /// Set as the message's `receivedAt`, replacing a client's.
    var receivedAt: Int64
    /// The type a message of a single-message route takes when it has none (and must have if it does).
    var routeType: MessageType?
    /// A message larger than this (its JSON text, in bytes) is refused on its own.
    var maxMessageBytes: Int
}

/// Validates Segment messages held as byte ranges of a line (SPEC §3.1).
///
/// Returns a reason string on failure, worded for the person who has to fix the input.
struct MessageValidator {
    /// Event time for messages that carry no timestamp at all.
    var ingestTime: Int64
    /// What text the store cannot hold (`EventSink.textLimits`).
    var textLimits: StoredTextLimits = .none

    private enum Field: Int, CaseIterable {
        case type, userId, anonymousId, previousId, event, name, messageId
        case timestamp, originalTimestamp, receivedAt, sentAt, context, writeKey

        var key: StaticString {
            switch self {
            case .type: return "type"
            case .userId: return "userId"
            case .anonymousId: return "anonymousId"
            case .previousId: return "previousId"
            case .event: return "event"
            case .name: return "name"
            case .messageId: return "messageId"
            case .timestamp: return "timestamp"
            case .originalTimestamp: return "originalTimestamp"
            case .receivedAt: return "receivedAt"
            case .sentAt: return "sentAt"
            case .context: return "context"
            case .writeKey: return "writeKey"
            }
        }

        var name: String { key.description }
    }

    private static func field(of member: JSONMember, in bytes: UnsafeBufferPointer<UInt8>) -> Field? {
        // Dispatch on the key's length first: most keys of a message are not ours.
        switch member.key.count {
        case 4:
            if JSONScanner.key(member, in: bytes, equals: "type") { return .type }
            if JSONScanner.key(member, in: bytes, equals: "name") { return .name }
        case 5: if JSONScanner.key(member, in: bytes, equals: "event") { return .event }
        case 6:
            if JSONScanner.key(member, in: bytes, equals: "userId") { return .userId }
            if JSONScanner.key(member, in: bytes, equals: "sentAt") { return .sentAt }
        case 7: if JSONScanner.key(member, in: bytes, equals: "context") { return .context }
        case 8: if JSONScanner.key(member, in: bytes, equals: "writeKey") { return .writeKey }
        case 9:
            if JSONScanner.key(member, in: bytes, equals: "messageId") { return .messageId }
            if JSONScanner.key(member, in: bytes, equals: "timestamp") { return .timestamp }
        case 10:
            if JSONScanner.key(member, in: bytes, equals: "previousId") { return .previousId }
            if JSONScanner.key(member, in: bytes, equals: "receivedAt") { return .receivedAt }
        case 11: if JSONScanner.key(member, in: bytes, equals: "anonymousId") { return .anonymousId }
        case 17: if JSONScanner.key(member, in: bytes, equals: "originalTimestamp") { return .originalTimestamp }
        default: break
        }
        if member.keyIsEscaped {
            let key = JSONScanner.decodeString(member.key, in: bytes, escaped: true)
            return Field.allCases.first { $0.name == key }
        }
        return nil
    }

    /// Validates the message object at `range` whose top-level members are `members`.
    ///
    /// With a `reception` (the collection endpoint, SPEC §11.1) the message may be no larger than
    /// its limit, takes the route's type when it has none, and gets the server's `receivedAt`; its
    /// event time then follows Segment's clock-skew correction.
    func validate(
        members: [JSONMember], range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>,
        envelope: EnvelopeDefaults? = nil, reception: Reception? = nil
    ) -> Result<ValidMessage, Rejection> {
        if let reception, range.count > reception.maxMessageBytes {
            return .failure(
                Rejection("the message is \(range.count) bytes, over the limit of \(reception.maxMessageBytes) bytes"))
        }
        if textLimits == .noNullOrLoneSurrogate, let reason = Self.unstorableEscape(in: bytes, range: range) {
            return .failure(Rejection(reason))
        }
        var found = [JSONMember?](repeating: nil, count: Field.allCases.count)
        var seen: UInt32 = 0
        for member in members {
            guard let field = MessageValidator.field(of: member, in: bytes) else { continue }
            // A repeated key is refused even when one of its values is null: readers disagree on which wins.
            if seen & (1 << field.rawValue) != 0 { return .failure(Rejection("duplicate field '\(field.name)'")) }
            seen |= 1 << field.rawValue
            // A field that is null counts as absent.
            if member.kind != .null { found[field.rawValue] = member }
        }

        func string(_ field: Field) -> Result<String?, Rejection> {
            guard let member = found[field.rawValue] else { return .success(nil) }
            guard member.kind == .string else {
                return .failure(Rejection("'\(field.name)' must be a string (got \(member.kind))"))
            }
            let value = JSONScanner.decodeString(
                (member.value.lowerBound + 1)..<(member.value.upperBound - 1), in: bytes, escaped: member.valueIsEscaped)
            return .success(value.isEmpty ? nil : value)
        }

        // type
        let type: MessageType
        if found[Field.type.rawValue] == nil, let routeType = reception?.routeType {
            type = routeType
        } else {
            guard found[Field.type.rawValue] != nil else {
                return .failure(Rejection("missing 'type' (expected one of \(MessageType.list))"))
            }
            let typeName: String
            switch string(.type) {
            case .failure(let rejection): return .failure(rejection)
            case .success(let value): typeName = value ?? ""
            }
            guard let named = MessageType(rawValue: typeName) else {
                return .failure(Rejection("unknown type '\(typeName)' (expected one of \(MessageType.list))"))
            }
            if let routeType = reception?.routeType, named != routeType {
                return .failure(
                    Rejection("'type' is '\(typeName)' but this route takes \(routeType.rawValue) messages"))
            }
            type = named
        }

        // identity
        let userId: String?
        let anonymousId: String?
        let messageIdGiven: String?
        var previousId: String? = nil
        var eventName: String? = nil
        do {
            userId = try string(.userId).get()
            anonymousId = try string(.anonymousId).get()
            messageIdGiven = try string(.messageId).get()
            switch type {
            case .track:
                eventName = try string(.event).get()
                guard eventName != nil else { return .failure(Rejection("a track needs a non-empty string 'event'")) }
            case .page, .screen:
                eventName = try string(.name).get()
            case .alias:
                previousId = try string(.previousId).get()
                guard userId != nil, previousId != nil else {
                    return .failure(Rejection("an alias needs a non-empty string 'userId' and 'previousId'"))
                }
            case .identify, .group:
                break
            }
        } catch {
            return .failure(error)
        }
        guard userId != nil || anonymousId != nil else {
            return .failure(Rejection("no identity: a non-empty string 'userId' or 'anonymousId' is required"))
        }

        // Timestamps: every one present must be ISO-8601; event time takes the first present.
        // The server replaces a client's receivedAt, so that one is not read.
        var time: Int64? = nil
        var parsedTimes = [Int64?](repeating: nil, count: Field.allCases.count)
        for field in [Field.timestamp, .originalTimestamp, .receivedAt, .sentAt] {
            if field == .receivedAt, reception != nil { continue }
            guard let member = found[field.rawValue] else { continue }
            guard member.kind == .string,
                let parsed = Timestamp.parse(UnsafeBufferPointer(rebasing: bytes[(member.value.lowerBound + 1)..<(member.value.upperBound - 1)]))
            else {
                let shown = member.kind == .string
                    ? "'\(JSONScanner.decodeString((member.value.lowerBound + 1)..<(member.value.upperBound - 1), in: bytes, escaped: member.valueIsEscaped).prefix(40))'"
                    : member.kind.description
                return .failure(
                    Rejection("'\(field.name)' is not an ISO-8601 time with a zone, like 2026-11-22T12:00:00.000Z (got \(shown))"))
            }
            parsedTimes[field.rawValue] = parsed
            if time == nil { time = parsed }
        }
        if let reception {
            // Segment's clock-skew correction: without a timestamp, the time the device says it made
            // the message is moved by how far its clock is off (its sentAt against the server's
            // receivedAt). Otherwise the server's receivedAt comes before sentAt.
            let sentAt = parsedTimes[Field.sentAt.rawValue] ?? envelope?.sentAtTime
            if let timestamp = parsedTimes[Field.timestamp.rawValue] {
                time = timestamp
            } else if let original = parsedTimes[Field.originalTimestamp.rawValue] {
                time = sentAt.map { reception.receivedAt - ($0 - original) } ?? original
            } else {
                time = reception.receivedAt
            }
        }
        if time == nil, found[Field.sentAt.rawValue] == nil, let envelopeTime = envelope?.sentAtTime {
            time = envelopeTime
        }

        // The stored body: unchanged unless a secret must go or the envelope adds fields.
        let addContext = found[Field.context.rawValue] == nil ? envelope?.context : nil
        let addSentAt = found[Field.sentAt.rawValue] == nil ? envelope?.sentAt : nil
        let dropWriteKey = members.contains { MessageValidator.field(of: $0, in: bytes) == .writeKey }
        let body: ValidMessage.Body
        if addContext == nil && addSentAt == nil && !dropWriteKey {
            body = .line(range)
        } else {
            var rebuilt: [UInt8] = [UInt8(ascii: "{")]
            rebuilt.reserveCapacity(range.count + 256)
            var first = true
            func append(_ member: JSONMember) {
                if !first { rebuilt.append(UInt8(ascii: ",")) }
                first = false
                rebuilt.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[member.whole]))
            }
            for member in members {
                switch MessageValidator.field(of: member, in: bytes) {
                case .writeKey: continue
                case .context where addContext != nil: continue  // a null context is replaced
                case .sentAt where addSentAt != nil: continue
                default: append(member)
                }
            }
            if let addContext { append(addContext) }
            if let addSentAt { append(addSentAt) }
            rebuilt.append(UInt8(ascii: "}"))
            body = .rebuilt(rebuilt)
        }

        var messageId = messageIdGiven ?? ""
        if messageIdGiven == nil {
            // From the content as the client sent it: a retry of the same message gets the same id.
            messageId = MessageValidator.derivedMessageId(body: body, in: bytes)
        }
        var stored = body
        if let reception {
            stored = .rebuilt(
                Self.received(
                    body, members: members, in: bytes, at: reception.receivedAt,
                    addingType: found[Field.type.rawValue] == nil ? type : nil))
        }
        return .success(
            ValidMessage(
                messageId: messageId, messageIdIsDerived: messageIdGiven == nil, type: type, userId: userId,
                anonymousId: anonymousId, previousId: previousId, eventName: eventName, time: time ?? ingestTime,
                body: stored))
    }

    /// `body` as the server stores it: the client's `receivedAt` (if any) replaced by the server's,
    /// and the route's `type` added when the message had none. `members` are the message's members in
    /// `bytes`, as validated: a body taken as it came (`.line`) is not scanned again.
    static func received(
        _ body: ValidMessage.Body, members: [JSONMember], in bytes: UnsafeBufferPointer<UInt8>, at time: Int64,
        addingType type: MessageType?
    ) -> [UInt8] {
        /// The message of `size` bytes in `message` whose members are `members`.
        func rebuild(_ message: UnsafeBufferPointer<UInt8>, members: [JSONMember], size: Int) -> [UInt8] {
            var out: [UInt8] = [UInt8(ascii: "{")]
            out.reserveCapacity(size + 64)
            var first = true
            for member in members where MessageValidator.field(of: member, in: message) != .receivedAt {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(contentsOf: UnsafeBufferPointer(rebasing: message[member.whole]))
            }
            if !first { out.append(UInt8(ascii: ",")) }
            if let type {
                out.append(contentsOf: #""type":"#.utf8)
                JSONValue.writeString(type.rawValue, into: &out)
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: #""receivedAt":""#.utf8)
            Timestamp.format(time, into: &out)
            out.append(contentsOf: #""}"#.utf8)
            return out
        }
        switch body {
        case .line(let range):
            return rebuild(bytes, members: members, size: range.count)
        case .rebuilt(let rebuilt):
            return rebuilt.withUnsafeBufferPointer { message in
                // A rebuilt body is valid JSON: its members scan (from its opening brace).
                let start = message.firstIndex(of: UInt8(ascii: "{")) ?? 0
                let members = (try? JSONScanner.members(of: start..<message.count, in: message)) ?? []
                return rebuild(message, members: members, size: message.count)
            }
        }
    }

    /// `derived-` and 32 hex digits of the SHA-256 of the message's canonical JSON (keys sorted,
    /// no whitespace), so the same content always gets the same id, whatever its key order.
    static func derivedMessageId(body: ValidMessage.Body, in bytes: UnsafeBufferPointer<UInt8>) -> String {
        let value: JSONValue?
        switch body {
        case .line(let range): value = try? JSONValue.parse(UnsafeBufferPointer(rebasing: bytes[range]))
        case .rebuilt(let rebuilt): value = rebuilt.withUnsafeBufferPointer { try? JSONValue.parse($0) }
        }
        return Hex.string(prefix: "derived-", SHA256.hash(data: value?.canonicalBytes ?? []), digits: 32)
    }
}

/// Why a line or message was refused.
public struct Rejection: Error, Sendable, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

extension MessageValidator {
    /// Why PostgreSQL cannot store the JSON text at `range` (valid JSON): a `\u0000` in a string,
    /// or a `\uD800`–`\uDFFF` escape that is not half of a surrogate pair; nil when it can.
    /// Escapes appear only inside strings, so the bytes are read as a sequence of escapes.
    static func unstorableEscape(in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> String? {
        func hex(_ at: Int) -> Int? {
            guard at + 4 <= range.upperBound else { return nil }
            var value = 0
            for index in at..<(at + 4) {
                let byte = bytes[index]
                let digit: Int
                switch byte {
                case 0x30...0x39: digit = Int(byte - 0x30)
                case 0x41...0x46: digit = Int(byte - 0x41 + 10)
                case 0x61...0x66: digit = Int(byte - 0x61 + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
        var index = range.lowerBound
        while index < range.upperBound {
            guard bytes[index] == 0x5C, index + 1 < range.upperBound else {
                index += 1
                continue
            }
            guard bytes[index + 1] == 0x75, let unit = hex(index + 2) else {
                index += 2
                continue
            }
            if unit == 0 {
                return "a string holds \\u0000, which a PostgreSQL store cannot hold (jsonb and text refuse it)"
            }
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed by an escaped low one.
                if index + 7 < range.upperBound, bytes[index + 6] == 0x5C, bytes[index + 7] == 0x75,
                    let low = hex(index + 8), (0xDC00...0xDFFF).contains(low)
                {
                    index += 12
                    continue
                }
                return "a string holds an unpaired surrogate escape \\u\(String(unit, radix: 16, uppercase: true)), which a PostgreSQL store cannot hold"
            }
            if (0xDC00...0xDFFF).contains(unit) {
                return "a string holds an unpaired surrogate escape \\u\(String(unit, radix: 16, uppercase: true)), which a PostgreSQL store cannot hold"
            }
            index += 6
        }
        return nil
    }
}
