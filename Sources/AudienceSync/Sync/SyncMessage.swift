import Crypto

/// The messages a sync sends for one change (SPEC §6.1).
public enum SyncMessage {
    /// A stable id for a definition's key: `aud_` or `trt_` and the first 24 hex digits of the
    /// SHA-256 of the key, so the same key always gets the same id.
    public static func computationID(key: String, kind: Definition.Kind) -> String {
        Hex.string(prefix: kind == .audience ? "aud_" : "trt_", SHA256.hash(data: Array(key.utf8)), digits: 24)
    }

    /// The messageId of a change: a function of the pair, the user, the value (JSON text) and the
    /// run that first produced the change; 51 characters. Fields are NUL-separated so that no two
    /// different inputs hash the same text: `as-<run id>-` and the first 40 hex digits of the
    /// SHA-256 of `audience-sync/1␀key␀destination␀userId␀value␀runId`.
    public static func messageID(key: String, destination: String, userId: String, value: String, runId: Int64)
        -> String
    {
        MessageIDs(key: key, destination: destination, runId: runId).id(userId: userId, value: value)
    }

    /// `messageID(key:destination:userId:value:runId:)` for the changes of one pair and run: the
    /// text they share is hashed once, and each change continues from a copy of that state (a
    /// `SHA256` is a value: updating a copy leaves the original as it was).
    public struct MessageIDs {
        private let head: SHA256
        private let runId: [UInt8]
        private let prefix: String

        public init(key: String, destination: String, runId: Int64) {
            var head = SHA256()
            head.update(data: Array("audience-sync/1\u{0}\(key)\u{0}\(destination)\u{0}".utf8))
            self.head = head
            self.runId = Array(String(runId).utf8)
            prefix = "as-\(runId)-"
        }

        public func id(userId: String, value: String) -> String {
            var hasher = head
            Self.update(&hasher, with: userId)
            Self.update(&hasher, with: value)
            hasher.update(data: runId)
            return Hex.string(prefix: prefix, hasher.finalize(), digits: 40)
        }

        /// Hashes the UTF-8 of `text` and the NUL that ends the field, without copying the text.
        private static func update(_ hasher: inout SHA256, with text: String) {
            var text = text
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
            withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        }
    }

    /// The largest message, in bytes of its JSON text, a sync sends: Segment's limit on one call
    /// (SPEC §6.2). It holds for every destination, so that what a pair sends does not depend on
    /// where it goes and `diff` can tell before sending.
    public static let maximumBytes = 32 * 1024

    /// The length of `messageID(…, runId:)`: `as-`, the run id, `-` and 40 hex digits.
    public static func messageIDLength(runId: Int64) -> Int { 3 + String(runId).utf8.count + 1 + 40 }

    /// Why a message of `size` bytes of JSON text can never be sent, or nil when it can.
    public static func invalidReason(size: Int) -> String? {
        guard size > maximumBytes else { return nil }
        return "the message is \(size) bytes, over the limit of \(maximumBytes) bytes (32 KB) for one message"
    }

    /// What every message of one pair at one `now` shares (context, timestamp), worked out once,
    /// so that a run of a million changes does not hash the key a million times.
    public struct Template: Sendable {
        public let key: String
        public let kind: Definition.Kind
        public let sendAs: DestinationConfiguration.SendAs
        let context: JSONValue
        let timestamp: JSONValue

        public init(key: String, kind: Definition.Kind, sendAs: DestinationConfiguration.SendAs, spaceID: String?, now: Int64) {
            self.key = key
            self.kind = kind
            self.sendAs = sendAs
            context = .object([
                "personas": .object([
                    "computation_class": .string(kind == .audience ? "audience" : "trait"),
                    "computation_key": .string(key),
                    "computation_id": .string(SyncMessage.computationID(key: key, kind: kind)),
                    "space_id": .string(spaceID),
                    "namespace": .string(spaceID),
                ]),
                "library": .object([
                    "name": .string(AudienceSyncVersion.name), "version": .string(AudienceSyncVersion.version),
                ]),
            ])
            timestamp = .string(Timestamp.format(now))
            var bytes = Array(#","traits":{"#.utf8)
            JSONValue.writeString(key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            identifyTraits = bytes
            bytes = Array(#","properties":{"audience_key":"#.utf8)
            JSONValue.writeString(key, into: &bytes)
            bytes.append(UInt8(ascii: ","))
            JSONValue.writeString(key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            trackProperties = bytes
            bytes = Array(#"},"context":"#.utf8)
            context.write(into: &bytes, sortedKeys: false)
            bytes.append(contentsOf: #","messageId":"#.utf8)
            contextAndMessageId = bytes
            bytes = Array(#","timestamp":"#.utf8)
            timestamp.write(into: &bytes, sortedKeys: false)
            bytes.append(UInt8(ascii: "}"))
            timestampAndEnd = bytes
        }

        public init(definition: Definition, sendAs: DestinationConfiguration.SendAs, spaceID: String?, now: Int64) {
            self.init(key: definition.key, kind: definition.kind, sendAs: sendAs, spaceID: spaceID, now: now)
        }

        /// The message's JSON text: byte for byte `body(userId:value:messageId:).jsonString`,
        /// written straight from the parts that do not change between messages.
        public func text(userId: String, value: JSONValue, messageId: String) -> String {
            var bytes: [UInt8] = []
            write(userId: userId, value: value, messageId: messageId, into: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Writes `text(userId:value:messageId:)` into `bytes`, replacing what it held (its
        /// capacity is kept, so a buffer reused for every message of a run allocates once).
        public func write(userId: String, value: JSONValue, messageId: String, into bytes: inout [UInt8]) {
            bytes.removeAll(keepingCapacity: true)
            bytes.reserveCapacity(fixedBytes + userId.utf8.count + messageId.utf8.count + 16)
            let track = kind == .audience && sendAs == .track
            bytes.append(contentsOf: track ? Self.trackHead : Self.identifyHead)
            JSONValue.writeString(userId, into: &bytes)
            if track {
                bytes.append(contentsOf: value == .bool(true) ? Self.entered : Self.exited)
                bytes.append(contentsOf: trackProperties)
            } else {
                bytes.append(contentsOf: identifyTraits)
            }
            value.write(into: &bytes, sortedKeys: false)
            bytes.append(contentsOf: contextAndMessageId)
            JSONValue.writeString(messageId, into: &bytes)
            bytes.append(contentsOf: timestampAndEnd)
        }

        /// The length in bytes of `text(userId:value:messageId:)` for a messageId of
        /// `messageIdLength` characters (letters, digits and `-`, as `messageID` makes them),
        /// without building the text or hashing anything.
        public func textLength(userId: String, value: JSONValue, messageIdLength: Int) -> Int {
            var scratch: [UInt8] = []
            JSONValue.writeString(userId, into: &scratch)
            value.write(into: &scratch, sortedKeys: false)
            let track = kind == .audience && sendAs == .track
            let fixed =
                track
                ? Self.trackHead.count + (value == .bool(true) ? Self.entered.count : Self.exited.count)
                    + trackProperties.count
                : Self.identifyHead.count + identifyTraits.count
            return fixed + scratch.count + contextAndMessageId.count + messageIdLength + 2 + timestampAndEnd.count
        }

        private static let identifyHead = Array(#"{"type":"identify","userId":"#.utf8)
        private static let trackHead = Array(#"{"type":"track","userId":"#.utf8)
        private static let entered = Array(#","event":"Audience Entered""#.utf8)
        private static let exited = Array(#","event":"Audience Exited""#.utf8)
        /// `,"traits":{"key":`, `,"properties":{"audience_key":"key","key":`, `},"context":{…},"messageId":`
        /// and `,"timestamp":"…"}`, written once.
        private let identifyTraits: [UInt8]
        private let trackProperties: [UInt8]
        private let contextAndMessageId: [UInt8]
        private let timestampAndEnd: [UInt8]
        private var fixedBytes: Int { 64 + trackProperties.count + contextAndMessageId.count + timestampAndEnd.count }
    }
}

/// A change whose message can never be sent, and why (SPEC §7: `invalid`).
public struct InvalidMessage: Sendable, Equatable {
    public var userId: String
    public var reason: String

    public init(userId: String, reason: String) {
        self.userId = userId
        self.reason = reason
    }
}

/// How far the delivery of a pair's pending messages has got.
public struct DeliveryProgress: Sendable, Equatable {
    public var key: String
    public var destination: String
    /// Messages answered so far (acknowledged or refused).
    public var done: Int
    /// Messages pending when the delivery started.
    public var total: Int
}
