import Foundation

extension LoopbackReceiver {
    /// One request as it arrived, and what the receiver answered.
    public struct Request: Sendable {
        /// Arrival order, from 0.
        public var index: Int
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        /// Empty when the receiver records counts only.
        public var body: [UInt8]
        /// The messages of a Segment batch body, in order (empty for any other body, or when the
        /// receiver records counts only).
        public var messages: [Message]
        /// The number of messages of a Segment batch body (also when recording counts only).
        public var messageCount: Int
        /// How many earlier requests carried the same messages (a retry or a re-send; compared by
        /// their messageIds, or by the whole body when it is not a batch).
        public var attempt: Int
        /// The status the receiver wrote; nil when it dropped the request or has not answered (yet).
        public var status: Int?

        /// Whether the receiver answered 2xx: every message of the request counts as received.
        public var acknowledged: Bool { status.map { (200..<300).contains($0) } ?? false }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        public var text: String { String(decoding: body, as: UTF8.self) }

        /// What identifies the request's content across attempts.
        var contentKey: String {
            messages.isEmpty ? "body:" + text : messages.map { $0.messageId ?? "?" }.joined(separator: "\n")
        }
    }

    /// One message of a batch: its exact text and the fields that identify it.
    public struct Message: Sendable, Equatable {
        /// The message's JSON text, byte for byte as it was sent.
        public var text: String
        public var messageId: String?
        public var userId: String?
        public var type: String?

        init(bytes: ArraySlice<UInt8>) {
            text = String(decoding: bytes, as: UTF8.self)
            let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
            messageId = object?["messageId"] as? String
            userId = object?["userId"] as? String
            type = object?["type"] as? String
        }
    }

    /// What the receiver keeps.
    public enum Recording: Sendable {
        /// Every request with its headers, body and messages.
        case everything
        /// Counts only (for the benchmark, whose requests are many and large).
        case countsOnly
    }
}

extension LoopbackReceiver.Request {
    /// A request with `body` and its batch messages decoded, not yet answered (for trying plans).
    public init(index: Int, method: String, uri: String, headers: [(String, String)], body: [UInt8]) {
        let messages = BatchBody.messages(body) ?? []
        self.init(
            index: index, method: method, uri: uri, headers: headers, body: body, messages: messages,
            messageCount: messages.count, attempt: 0, status: nil)
    }
}
