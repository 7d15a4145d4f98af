@testable import AudienceSync

extension ReferenceEvaluator {
    /// The valid messages of NDJSON text, read as SPEC §3.1 says, for the oracle: lines that are
    /// not a JSON object or not a valid message are skipped; a batch envelope gives its `context`
    /// and `sentAt` to messages without their own; a message without `messageId` gets
    /// `derived-<line>-<index>` (the oracle needs one only to break ties).
    static func messages(ndjson text: String) -> [JSONValue] {
        var result: [JSONValue] = []
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let value = try? JSONValue.parse(String(line)), case .object(let members) = value else { continue }
            var batch: [(JSONValue, Int)] = [(value, 0)]
            if case .array(let items)? = members.first(where: { $0.key == "batch" })?.value {
                let inherited = members.filter { $0.key == "context" || $0.key == "sentAt" }
                batch = items.enumerated().map { index, item in
                    guard case .object(var own) = item else { return (item, index) }
                    for member in inherited where !own.contains(where: { $0.key == member.key && $0.value != .null }) {
                        own.removeAll { $0.key == member.key }
                        own.append(member)
                    }
                    return (.object(own), index)
                }
            }
            for (message, index) in batch {
                guard case .object(var own) = message, isValid(message) else { continue }
                if !own.contains(where: { $0.key == "messageId" && $0.value.stringValue?.isEmpty == false }) {
                    own.removeAll { $0.key == "messageId" }
                    own.append(JSONValue.Member("messageId", .string("derived-\(offset + 1)-\(index)")))
                }
                result.append(.object(own))
            }
        }
        return result
    }

    /// SPEC §3.1: a known type; a non-empty `userId` or `anonymousId`; `event` on a track;
    /// `userId` and `previousId` on an alias; every timestamp present ISO-8601, at least one.
    static func isValid(_ message: JSONValue) -> Bool {
        func text(_ key: String) -> String? {
            guard case .string(let value)? = message[key], !value.isEmpty else { return nil }
            return value
        }
        guard let type = text("type"), ["track", "identify", "page", "screen", "group", "alias"].contains(type) else {
            return false
        }
        guard text("userId") != nil || text("anonymousId") != nil else { return false }
        if type == "track" && text("event") == nil { return false }
        if type == "alias" && (text("userId") == nil || text("previousId") == nil) { return false }
        var found = false
        for key in ["timestamp", "originalTimestamp", "receivedAt", "sentAt"] {
            guard let value = message[key], value != .null else { continue }
            guard case .string(let string) = value, Timestamp.parse(string) != nil else { return false }
            found = true
        }
        return found
    }
}
