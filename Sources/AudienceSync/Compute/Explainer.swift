/// Why a user is or is not a member of an audience, or has the value of a computed trait they
/// have (`audience-sync explain`).
public struct Explanation: Sendable {
    public var key: String
    public var kind: Definition.Kind
    /// Audiences: whether the user is a member. Computed traits: whether the user has a value.
    public var member: Bool
    /// Computed traits: the user's value (nil: none).
    public var value: Literal?
    /// One line per condition, indented by depth: what was tested and what was found.
    public var reasons: [String]

    public var json: JSONValue {
        .object([
            "key": .string(key), "kind": .string(kind.rawValue), "member": .bool(member),
            "value": value.flatMap { try? JSONValue.parse($0.json) } ?? .null,
            "reasons": .array(reasons.map(JSONValue.string)),
        ])
    }
}

/// Explains definitions for one user by evaluating each sub-condition for that user alone, with
/// the same compiled SQL the engine uses for the whole audience.
public struct Explainer {
    public let engine: MembershipEngine

    public init(engine: MembershipEngine) { self.engine = engine }

    public func explain(userId: String, key: String, now: Int64) throws -> Explanation {
        guard let definition = engine.definitions[key: key] else {
            _ = try engine.statement(key: key, now: now)  // throws the "unknown key" error
            throw AudienceSyncError(.usage, "no definition '\(key)'")
        }
        switch definition.kind {
        case .audience:
            var reasons: [String] = []
            let member = try definition.condition.map { try explain($0, userId: userId, now: now, depth: 0, into: &reasons) }
                ?? false
            return Explanation(key: key, kind: .audience, member: member, value: nil, reasons: reasons)
        case .computedTrait:
            let value = try engine.values(key: key, now: now, userId: userId)
            var reasons: [String] = []
            if let spec = definition.compute {
                let count = try matchingCount(
                    kind: .track, name: spec.event, filters: spec.filters, window: spec.window, userId: userId, now: now)
                var line = "\(spec.op.rawValue) of \(spec.property.map { "\($0)" } ?? "events") over '\(spec.event)'"
                line += Self.describe(spec.window) + Self.describe(spec.filters)
                line += ": \(count) matching event\(count == 1 ? "" : "s")"
                line += value.map { " -> \($0.json)" } ?? " -> no value"
                reasons.append(line)
            }
            return Explanation(key: key, kind: .computedTrait, member: value != nil, value: value, reasons: reasons)
        }
    }

    // MARK: Conditions

    @discardableResult
    private func explain(_ condition: Condition, userId: String, now: Int64, depth: Int, into reasons: inout [String])
        throws -> Bool
    {
        let indent = String(repeating: "  ", count: depth)
        let index = reasons.count
        reasons.append("")  // filled in below, once the children are known
        let holds = try self.holds(condition, userId: userId, now: now)
        var line: String
        switch condition {
        case .all(let conditions), .any(let conditions):
            var held = 0
            for child in conditions where try explain(child, userId: userId, now: now, depth: depth + 1, into: &reasons) {
                held += 1
            }
            let head = if case .all = condition { "all" } else { "any" }
            line = "\(head): \(held) of \(conditions.count) held"
        case .not(let inner):
            try explain(inner, userId: userId, now: now, depth: depth + 1, into: &reasons)
            line = "not"
        case .performed(let event):
            let count = try matchingCount(
                kind: event.kind, name: event.name, filters: event.filters, window: event.window, userId: userId, now: now)
            line = "\(event.kind.head) '\(event.name)'" + Self.describe(event.window) + Self.describe(event.filters)
            line += ": \(count) matching event\(count == 1 ? "" : "s"), count \(event.count)"
        case .trait(let path, let predicate):
            let value = try traitValue(path, userId: userId, now: now)
            line = "trait \(path) is \(value ?? "missing"), \(predicate)"
        case .computed(let key, let predicate):
            let value = try engine.values(key: key, now: now, userId: userId)
            line = "computed \(key) is \(value?.json ?? "no value"), \(predicate)"
        case .inAudience(let key):
            line = "in_audience \(key)"
        case .sequence(let steps, let window):
            var counts: [String] = []
            for (position, step) in steps.enumerated() {
                let count = try matchingCount(
                    kind: step.kind, name: step.name, filters: step.filters,
                    window: position == 0 ? window : .allTime, userId: userId, now: now)
                var text = "'\(step.name)' \(count)"
                if let within = step.withinPrevious { text += " (within \(within) of the previous)" }
                counts.append(text)
            }
            line = "sequence" + Self.describe(window) + ": events per step " + counts.joined(separator: ", ")
        }
        reasons[index] = indent + line + (holds ? ": holds" : ": does not hold")
        return holds
    }

    /// Whether `condition` holds for the user: the compiled set, restricted to them.
    private func holds(_ condition: Condition, userId: String, now: Int64) throws -> Bool {
        var compiler = QueryCompiler(definitions: engine.definitions, now: now)
        let set = compiler.set(condition)
        let user = compiler.bind(.text(userId))
        let sql = compiler.withCTEs("SELECT 1 FROM (\(set)) WHERE uid = \(user) LIMIT 1")
        return try engine.run(sql, compiler.parameters).first != nil
    }

    private func matchingCount(
        kind: EventKind, name: String, filters: [PropertyFilter], window: EventWindow, userId: String, now: Int64
    ) throws -> Int {
        var compiler = QueryCompiler(definitions: engine.definitions, now: now)
        let events = compiler.matchingEvents(kind: kind, name: name, filters: filters, window: window)
        let user = compiler.bind(.text(userId))
        let sql = compiler.withCTEs("SELECT count(*) FROM (\(events)) WHERE uid = \(user)")
        return Int(try engine.run(sql, compiler.parameters).first?.first?.int64 ?? 0)
    }

    /// The user's current value of a trait path, as JSON text; nil when missing.
    private func traitValue(_ path: PropertyPath, userId: String, now: Int64) throws -> String? {
        var compiler = QueryCompiler(definitions: engine.definitions, now: now)
        let current = compiler.currentTraits(path)
        let fullPath = compiler.bind(.text(PropertyPath(["traits"] + path.keys).sqliteJSONPath))
        let user = compiler.bind(.text(userId))
        let sql = compiler.withCTEs(
            "SELECT \(compiler.dialect.jsonText("t.message", fullPath)) FROM (\(current)) t WHERE t.uid = \(user)")
        return try engine.run(sql, compiler.parameters).first?.first?.string
    }

    // MARK: Descriptions

    static func describe(_ window: EventWindow) -> String {
        switch window {
        case .allTime: return ""
        case .within(let duration): return " within \(duration)"
        case .betweenAgo(let near, let far): return " between \(near) and \(far) ago"
        case .between(let start, let end): return " between \(Timestamp.format(start)) and \(Timestamp.format(end))"
        }
    }

    static func describe(_ filters: [PropertyFilter]) -> String {
        guard !filters.isEmpty else { return "" }
        return " where " + filters.map { "\($0.path) \($0.predicate)" }.joined(separator: ", ")
    }
}
