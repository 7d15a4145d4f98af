/// Explains definitions for one user by evaluating each sub-condition for that user alone, with
/// the same compiled SQL the engine uses for the whole audience.
public struct Explainer {
    public let engine: MembershipEngine

    public init(engine: MembershipEngine) { self.engine = engine }

    public func explain(userId: String, key: String, now: Int64) async throws -> Explanation {
        guard let definition = engine.definitions[key: key] else { throw engine.unknown(key) }
        switch definition.kind {
        case .audience:
            var reasons: [String] = []
            var member = false
            if let condition = definition.condition {
                member = try await explain(condition, userId: userId, now: now, depth: 0, into: &reasons)
            }
            return Explanation(key: key, kind: .audience, member: member, value: nil, reasons: reasons)
        case .computedTrait:
            let value = try await engine.values(key: key, now: now, userId: userId)
            var reasons: [String] = []
            if let spec = definition.compute {
                let count = try await matchingCount(
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
        async throws -> Bool
    {
        let indent = String(repeating: "  ", count: depth)
        let index = reasons.count
        reasons.append("")  // filled in below, once the children are known
        let holds = try await self.holds(condition, userId: userId, now: now)
        var line: String
        switch condition {
        case .all(let conditions), .any(let conditions):
            var held = 0
            for child in conditions {
                if try await explain(child, userId: userId, now: now, depth: depth + 1, into: &reasons) { held += 1 }
            }
            let head = if case .all = condition { "all" } else { "any" }
            line = "\(head): \(held) of \(conditions.count) held"
        case .not(let inner):
            try await explain(inner, userId: userId, now: now, depth: depth + 1, into: &reasons)
            line = "not"
        case .performed(let event):
            let count = try await matchingCount(
                kind: event.kind, name: event.name, filters: event.filters, window: event.window, userId: userId, now: now)
            line = "\(event.kind.head) '\(event.name)'" + Self.describe(event.window) + Self.describe(event.filters)
            line += ": \(count) matching event\(count == 1 ? "" : "s"), count \(event.count)"
        case .trait(let path, let predicate):
            let value = try await traitValue(path, userId: userId, now: now)
            line = "trait \(path) is \(value ?? "missing"), \(predicate)"
        case .computed(let key, let predicate):
            let value = try await engine.values(key: key, now: now, userId: userId)
            line = "computed \(key) is \(value?.json ?? "no value"), \(predicate)"
        case .inAudience(let key):
            line = "in_audience \(key)"
        case .sequence(let steps, let window):
            var counts: [String] = []
            for (position, step) in steps.enumerated() {
                let count = try await matchingCount(
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
    private func holds(_ condition: Condition, userId: String, now: Int64) async throws -> Bool {
        var compiler = engine.compiler(now: now)
        return try await !engine.source.rows(compiler.holdsQuery(condition, userId: userId)).isEmpty
    }

    private func matchingCount(
        kind: EventKind, name: String, filters: [PropertyFilter], window: EventWindow, userId: String, now: Int64
    ) async throws -> Int {
        var compiler = engine.compiler(now: now)
        let query = compiler.matchingCountQuery(kind: kind, name: name, filters: filters, window: window, userId: userId)
        return try await engine.source.count(query)
    }

    /// The user's current value of a trait path, as JSON text; nil when missing.
    private func traitValue(_ path: PropertyPath, userId: String, now: Int64) async throws -> String? {
        var compiler = engine.compiler(now: now)
        return try await engine.source.rows(compiler.traitValueQuery(path, userId: userId)).first?.first?.string
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
