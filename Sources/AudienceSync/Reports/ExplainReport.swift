/// Why a user is or is not a member of an audience, or has the value of a computed trait they
/// have (`audience-sync explain`).
public struct Explanation: Sendable, Encodable {
    public var key: String
    public var kind: Definition.Kind
    /// Audiences: whether the user is a member. Computed traits: whether the user has a value.
    public var member: Bool
    /// Computed traits: the user's value (nil: none).
    public var value: Literal?
    /// One line per condition, indented by depth: what was tested and what was found.
    public var reasons: [String]

    enum CodingKeys: String, CodingKey { case key, kind, member, value, reasons }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(kind.rawValue, forKey: .kind)
        try container.encode(member, forKey: .member)
        try container.encode(value, forKey: .value)
        try container.encode(reasons, forKey: .reasons)
    }
}

/// What `audience-sync explain` prints: each definition for one user at one time (SPEC §10).
public struct ExplainReport: Sendable, Encodable {
    public var user: String
    public var now: Int64
    public var definitions: [Explanation] = []

    public init(user: String, now: Int64) {
        self.user = user
        self.now = now
    }

    enum CodingKeys: String, CodingKey { case user, now, definitions }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(Timestamp.format(now), forKey: .now)
        try container.encode(definitions, forKey: .definitions)
    }

    public var text: String {
        var lines = ["\(user) at \(Timestamp.format(now))"]
        for explanation in definitions {
            switch explanation.kind {
            case .audience:
                lines.append("\(explanation.key): \(explanation.member ? "member" : "not a member")")
            case .computedTrait:
                lines.append("\(explanation.key): \(explanation.value?.json ?? "no value")")
            }
            lines += explanation.reasons.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

/// What `audience-sync members` prints (SPEC §10): an audience's members, or a computed trait's
/// values, by the bytes of the user ids.
public struct MembersReport: Sendable, Encodable {
    public enum Result: Sendable {
        case members([String])
        case values([MemberValue])
    }

    public var key: String
    public var now: Int64
    public var result: Result

    public init(key: String, now: Int64, result: Result) {
        self.key = key
        self.now = now
        self.result = result
    }

    enum CodingKeys: String, CodingKey { case key, now, members, values }

    /// A JSON object of user id → value; the values are JSON texts from the store.
    private struct Values: Encodable {
        var values: [MemberValue]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for value in values {
                try container.encode(try Literal(json: value.value), forKey: Key(stringValue: value.userId))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(Timestamp.format(now), forKey: .now)
        switch result {
        case .members(let members): try container.encode(members, forKey: .members)
        case .values(let values): try container.encode(Values(values: values), forKey: .values)
        }
    }

    /// One user id per line, or `user<TAB>value` with the value as JSON.
    public var text: String {
        switch result {
        case .members(let members): return members.joined(separator: "\n")
        case .values(let values): return values.map { "\($0.userId)\t\((try? Literal(json: $0.value))?.json ?? $0.value)" }.joined(separator: "\n")
        }
    }

    /// How many members or values.
    public var count: Int {
        switch result {
        case .members(let members): return members.count
        case .values(let values): return values.count
        }
    }
}
