import Yams

/// A definition read from one file, with the positions the cross-file checks of `DefinitionSet`
/// report at.
struct ParsedDefinition {
    var definition: Definition
    /// The `name:` value node.
    var nameNode: Node
    /// The `key:` value node, else the `name:` node the key was derived from.
    var keyNode: Node
    /// Each `in_audience`/`computed` reference with the node of its key.
    var references: [(reference: Condition.Reference, node: Node)]
}

/// Reads one definition file into a `Definition`, recording every error in the reader.
struct DefinitionParser {
    let reader: YAMLReader
    let configuration: Configuration
    private var references: [(reference: Condition.Reference, node: Node)] = []

    static let fields = [
        "name", "key", "kind", "description", "condition", "compute", "destinations", "schedule", "enabled",
    ]
    static let heads = [
        "all", "any", "not", "performed", "performed_page", "performed_screen", "trait", "computed", "in_audience",
        "sequence",
    ]
    static let windowFields = ["within", "between_ago", "between"]
    static let operators = Predicate.Operator.allCases.map(\.rawValue)
    static let computeFields = [
        "op", "event", "property", "where", "within", "between_ago", "between", "min_frequency",
    ]

    init(reader: YAMLReader, configuration: Configuration) {
        self.reader = reader
        self.configuration = configuration
    }

    /// The definition in `text`, or nil when it has errors (all recorded in the reader).
    mutating func parse(_ text: String) -> ParsedDefinition? {
        let errorsBefore = reader.errors.count
        guard let root = reader.compose(text) else {
            if reader.errors.count == errorsBefore {
                reader.fail("the file is empty (expected a definition with name and condition)", line: 1, column: 1)
            }
            return nil
        }
        guard
            let fields = reader.fields(
                root, allowed: Self.fields, what: "a definition (a mapping with name, condition, …)")
        else { return nil }

        var name: String?
        if let node = fields["name"] {
            name = reader.string(node, what: "a name")
        } else {
            reader.fail("missing field 'name'", at: root)
        }

        var kind: Definition.Kind? = .audience
        if let node = fields["kind"] {
            let kinds = Definition.Kind.allCases.map(\.rawValue)
            if case .scalar(let scalar) = node, let value = Definition.Kind(rawValue: scalar.string) {
                kind = value
            } else {
                reader.fail(
                    YAMLReader.unknown("kind", node.scalar?.string ?? YAMLReader.describe(node), expected: kinds),
                    at: node)
                kind = nil
            }
        }

        var key: String?
        if let node = fields["key"] {
            if let value = reader.string(node, what: "a trait key") {
                if TraitKey.isValid(value) {
                    key = value
                } else {
                    reader.fail(
                        "invalid key '\(value)' (expected lowercase letters, digits and _, like order_completed_30d)",
                        at: node)
                }
            }
        } else if let name, let nameNode = fields["name"] {
            let derived = TraitKey.snakeCase(name)
            if derived.isEmpty {
                reader.fail(
                    "the name '\(name)' gives an empty key (it has no ASCII letter or digit); add a key: field",
                    at: nameNode)
            } else {
                key = derived
            }
        }

        var description: String?
        if let node = fields["description"], node.tagName != .null {
            description = reader.string(node, what: "a description", allowEmpty: true)
        }
        var enabled = true
        if let node = fields["enabled"], let value = reader.bool(node, what: "enabled") { enabled = value }
        var schedule = configuration.schedule
        if let node = fields["schedule"], let value = reader.duration(node) { schedule = value }

        var destinations = configuration.destinations.map(\.name)
        if let node = fields["destinations"], let items = reader.list(node, what: "a list of destination names") {
            destinations = []
            for item in items {
                guard let destination = reader.string(item, what: "a destination name") else { continue }
                if destinations.contains(destination) {
                    reader.fail("destination '\(destination)' is listed twice", at: item)
                    continue
                }
                if enabled && configuration.destination(named: destination) == nil {
                    let configured = configuration.destinations.map(\.name)
                    let known =
                        configured.isEmpty
                        ? "no destinations are configured in \(configuration.file)"
                        : "expected one of \(configured.joined(separator: ", "))"
                    reader.fail("unknown destination '\(destination)' (\(known))", at: item)
                }
                destinations.append(destination)
            }
        }

        var condition: Condition?
        var compute: ComputeSpec?
        if let node = fields["condition"] {
            if kind == .computedTrait {
                reader.fail("a computed trait takes compute:, not condition:", at: fields.key("condition"))
            } else {
                condition = parseCondition(node)
            }
        } else if kind == .audience {
            reader.fail("missing field 'condition' (an audience needs a condition)", at: root)
        }
        if let node = fields["compute"] {
            if kind == .audience {
                reader.fail("compute: is for computed traits (add kind: computed_trait)", at: fields.key("compute"))
            } else {
                compute = parseCompute(node)
            }
        } else if kind == .computedTrait {
            reader.fail("missing field 'compute' (a computed trait needs a compute)", at: root)
        }

        guard reader.errors.count == errorsBefore, let name, let key, let kind, let nameNode = fields["name"] else {
            return nil
        }
        let definition = Definition(
            name: name, key: key, kind: kind, description: description, condition: condition, compute: compute,
            destinations: destinations, schedule: schedule, enabled: enabled, file: reader.file)
        return ParsedDefinition(
            definition: definition, nameNode: nameNode, keyNode: fields["key"] ?? nameNode, references: references)
    }

    // MARK: Conditions

    /// The fields a condition with `head` accepts besides the head.
    private static func modifiers(of head: String, inSequence: Bool) -> [String] {
        switch head {
        case "performed", "performed_page", "performed_screen":
            return inSequence ? ["where", "within_previous"] : ["where", "count"] + windowFields
        case "trait", "computed": return operators
        case "sequence": return windowFields
        default: return []
        }
    }

    private mutating func parseCondition(_ node: Node, sequenceStep: Bool = false) -> Condition? {
        let expectedHeads = sequenceStep ? ["performed", "performed_page", "performed_screen"] : Self.heads
        guard
            let mapping = reader.mapping(
                node, what: "a condition (a mapping with one of \(expectedHeads.joined(separator: ", ")))")
        else { return nil }
        let names = mapping.keys.map { $0.scalar?.string ?? "" }
        let heads = names.filter { Self.heads.contains($0) }
        guard let head = heads.first else {
            let allModifiers = Set(Self.heads.flatMap { Self.modifiers(of: $0, inSequence: sequenceStep) })
            let typos = mapping.keys.filter { !allModifiers.contains($0.scalar?.string ?? "") }
            if typos.isEmpty {
                reader.fail("a condition needs one of \(expectedHeads.joined(separator: ", ")) (got none)", at: node)
            }
            for key in typos {
                reader.fail(
                    YAMLReader.unknown(
                        "condition", key.scalar?.string ?? YAMLReader.describe(key), expected: expectedHeads), at: key)
            }
            return nil
        }
        guard heads.count == 1 else {
            let second = mapping.keys.filter { ($0.scalar?.string).map(Self.heads.contains) ?? false }[1]
            reader.fail(
                "a condition has exactly one of \(Self.heads.joined(separator: ", ")); got '\(heads[0])' and '\(heads[1])' (combine them under all: or any:)",
                at: second)
            return nil
        }
        if sequenceStep && !expectedHeads.contains(head) {
            reader.fail(
                "a sequence step is one of performed, performed_page, performed_screen (got '\(head)')",
                at: mapping.keys.first { $0.scalar?.string == head })
            return nil
        }
        let allowed = [head] + Self.modifiers(of: head, inSequence: sequenceStep)
        if !sequenceStep, head.hasPrefix("performed"),
            let key = mapping.keys.first(where: { $0.scalar?.string == "within_previous" })
        {
            reader.fail("within_previous applies only to a step of a sequence (use within: for a window)", at: key)
        }
        let fields: YAMLReader.Fields
        if head == "trait" || head == "computed" {
            // Everything beside the head is meant as an operator.
            var entries: [(name: String, key: Node, value: Node)] = []
            var unknown = false
            for (key, value) in mapping {
                let name = key.scalar?.string ?? ""
                if allowed.contains(name) {
                    entries.append((name, key, value))
                } else {
                    reader.fail(YAMLReader.unknown("operator", name, expected: Self.operators), at: key)
                    unknown = true
                }
            }
            // An unknown operator was meant as the predicate: do not also report a missing one.
            if unknown { return nil }
            fields = YAMLReader.Fields(node: node, entries: entries)
        } else {
            let known = sequenceStep || !head.hasPrefix("performed") ? allowed : allowed + ["within_previous"]
            guard let checked = reader.fields(node, allowed: known, what: "a condition") else { return nil }
            fields = checked
        }
        let value = fields[head]!

        switch head {
        case "all", "any":
            guard let items = reader.list(value, what: "a list of conditions") else { return nil }
            if items.isEmpty {
                reader.fail("\(head) needs at least one condition", at: value)
                return nil
            }
            let conditions = items.map { parseCondition($0) }
            guard conditions.allSatisfy({ $0 != nil }) else { return nil }
            return head == "all" ? .all(conditions.map { $0! }) : .any(conditions.map { $0! })
        case "not":
            return parseCondition(value).map(Condition.not)
        case "performed", "performed_page", "performed_screen":
            let kind: EventKind = head == "performed" ? .track : head == "performed_page" ? .page : .screen
            guard let name = reader.string(value, what: "an event name") else { return nil }
            let filters = fields["where"].map { parseWhere($0) } ?? []
            if sequenceStep {
                // within_previous is read by the sequence.
                return filters.map { .performed(EventCondition(kind: kind, name: name, filters: $0)) }
            }
            let count = fields["count"].map { parseCount($0) }
            let window = parseWindow(fields)
            guard let filters, let window, count != .some(nil) else { return nil }
            return .performed(
                EventCondition(kind: kind, name: name, filters: filters, count: count ?? nil, window: window))
        case "trait", "computed":
            let predicate = parseInlinePredicate(fields, head: head)
            if head == "trait" {
                guard let text = reader.string(value, what: "a trait path"), let path = parsePath(text, at: value)
                else { return nil }
                return predicate.map { .trait(path, $0) }
            }
            guard let key = reader.string(value, what: "a computed trait key") else { return nil }
            references.append((.computedTrait(key), value))
            return predicate.map { .computed(key: key, $0) }
        case "in_audience":
            guard let key = reader.string(value, what: "an audience key") else { return nil }
            references.append((.audience(key), value))
            return .inAudience(key: key)
        case "sequence":
            guard let items = reader.list(value, what: "a list of steps") else { return nil }
            if items.isEmpty {
                reader.fail("sequence needs at least one step", at: value)
                return nil
            }
            var steps: [SequenceStep] = []
            var failed = false
            for (index, item) in items.enumerated() {
                guard case .performed(let event)? = parseCondition(item, sequenceStep: true) else {
                    failed = true
                    continue
                }
                var withinPrevious: Duration?
                if let mapping = item.mapping,
                    let key = mapping.keys.first(where: { $0.scalar?.string == "within_previous" })
                {
                    if index == 0 {
                        reader.fail(
                            "within_previous does not apply to the first step (there is no previous one)", at: key)
                        failed = true
                    } else if let duration = reader.duration(mapping["within_previous"]!, positive: true) {
                        withinPrevious = duration
                    } else {
                        failed = true
                    }
                }
                steps.append(
                    SequenceStep(
                        kind: event.kind, name: event.name, filters: event.filters, withinPrevious: withinPrevious))
            }
            let window = parseWindow(fields)
            guard !failed, let window else { return nil }
            return .sequence(steps: steps, window: window)
        default:
            return nil
        }
    }

    /// `where: {PATH: PREDICATE, ...}`.
    private func parseWhere(_ node: Node) -> [PropertyFilter]? {
        guard let mapping = reader.mapping(node, what: "a mapping of property paths to values or predicates") else {
            return nil
        }
        var filters: [PropertyFilter] = []
        var failed = false
        for (key, value) in mapping {
            guard let text = reader.string(key, what: "a property path"), let path = parsePath(text, at: key),
                let predicate = parsePredicate(value)
            else {
                failed = true
                continue
            }
            filters.append(PropertyFilter(path: path, predicate: predicate))
        }
        return failed ? nil : filters
    }

    private func parsePath(_ text: String, at node: Node) -> PropertyPath? {
        do {
            return try PropertyPath.parse(text)
        } catch {
            reader.fail(error.description, at: node)
            return nil
        }
    }

    /// The window fields of a `performed`, `sequence` or `compute` mapping; `.allTime` when none is
    /// given, nil after an error.
    private func parseWindow(_ fields: YAMLReader.Fields) -> EventWindow? {
        let given = fields.entries.filter { Self.windowFields.contains($0.name) }
        guard let first = given.first else { return .allTime }
        if given.count > 1 {
            reader.fail(
                "give only one of within, between_ago, between (got \(given.map(\.name).joined(separator: " and ")))",
                at: given[1].key)
            return nil
        }
        switch first.name {
        case "within":
            return reader.duration(first.value, positive: true).map(EventWindow.within)
        case "between_ago":
            guard let items = reader.list(first.value, what: "[NEAR, FAR] like [30d, 90d]") else { return nil }
            guard items.count == 2 else {
                reader.fail("expected [NEAR, FAR] like [30d, 90d] (got \(items.count) values)", at: first.value)
                return nil
            }
            guard let near = reader.duration(items[0]), let far = reader.duration(items[1]) else { return nil }
            guard near < far else {
                reader.fail(
                    "between_ago needs NEAR before FAR: [30d, 90d] means between 30 and 90 days ago (got [\(items[0].scalar!.string), \(items[1].scalar!.string)])",
                    at: first.value)
                return nil
            }
            return .betweenAgo(near: near, far: far)
        default:  // between
            guard
                let items = reader.list(
                    first.value, what: "[START, END] like [2026-01-01T00:00:00Z, 2026-02-01T00:00:00Z]")
            else {
                return nil
            }
            guard items.count == 2 else {
                reader.fail(
                    "expected [START, END] like [2026-01-01T00:00:00Z, 2026-02-01T00:00:00Z] (got \(items.count) values)",
                    at: first.value)
                return nil
            }
            guard let start = parseInstant(items[0]), let end = parseInstant(items[1]) else { return nil }
            guard start < end else {
                reader.fail(
                    "between needs START before END (got \(Timestamp.format(start)) and \(Timestamp.format(end)))",
                    at: first.value)
                return nil
            }
            return .between(startMillis: start, endMillis: end)
        }
    }

    /// An ISO-8601 instant, or a date (`2026-01-01`, midnight UTC).
    private func parseInstant(_ node: Node) -> Int64? {
        if case .scalar(let scalar) = node {
            let text = scalar.string
            if let millis = Timestamp.parse(text)
                ?? (text.utf8.count == 10 ? Timestamp.parse(text + "T00:00:00Z") : nil)
            {
                return millis
            }
        }
        reader.fail(
            "expected an ISO-8601 instant like 2026-01-01T00:00:00Z (got \(YAMLReader.describe(node)))", at: node)
        return nil
    }

    // MARK: Predicates

    /// A scalar (`eq`) or a mapping of operators.
    private func parsePredicate(_ node: Node) -> Predicate? {
        switch node {
        case .scalar:
            return scalarOperand(node, for: .eq).map(Predicate.equals)
        case .mapping:
            var entries: [(name: String, key: Node, value: Node)] = []
            var failed = false
            for (key, value) in node.mapping! {
                let name = key.scalar?.string ?? ""
                if Self.operators.contains(name) {
                    entries.append((name, key, value))
                } else {
                    reader.fail(YAMLReader.unknown("operator", name, expected: Self.operators), at: key)
                    failed = true
                }
            }
            if entries.isEmpty && !failed {
                reader.fail("expected at least one operator (\(Self.operators.joined(separator: ", ")))", at: node)
                return nil
            }
            let predicate = operators(entries)
            return failed ? nil : predicate
        default:
            reader.fail(
                "expected a value or a mapping of operators like {gte: 1} (got \(YAMLReader.describe(node)); for one of several values use {in: [...]})",
                at: node)
            return nil
        }
    }

    /// The operators beside a `trait:` or `computed:` head.
    private func parseInlinePredicate(_ fields: YAMLReader.Fields, head: String) -> Predicate? {
        let entries = fields.entries.filter { $0.name != head }
        if entries.isEmpty {
            reader.fail(
                "\(head) needs a predicate beside it: one or more of \(Self.operators.joined(separator: ", ")) (like \(head): plan, eq: pro)",
                at: fields.node)
            return nil
        }
        return operators(entries)
    }

    private func operators(_ entries: [(name: String, key: Node, value: Node)]) -> Predicate? {
        var comparisons: [Predicate.Comparison] = []
        var failed = false
        for (name, _, value) in entries {
            guard let op = Predicate.Operator(rawValue: name), let comparison = comparison(op, value) else {
                failed = true
                continue
            }
            comparisons.append(comparison)
        }
        return failed ? nil : Predicate(comparisons)
    }

    private func comparison(_ op: Predicate.Operator, _ node: Node) -> Predicate.Comparison? {
        switch op {
        case .eq: return scalarOperand(node, for: op).map { .eq($0) }
        case .ne: return scalarOperand(node, for: op).map { .ne($0) }
        case .gt: return orderedOperand(node, for: op).map { .gt($0) }
        case .gte: return orderedOperand(node, for: op).map { .gte($0) }
        case .lt: return orderedOperand(node, for: op).map { .lt($0) }
        case .lte: return orderedOperand(node, for: op).map { .lte($0) }
        case .in, .notIn:
            guard let items = reader.list(node, what: "\(op.rawValue): a list of values like [a, b]") else {
                return nil
            }
            let values = items.map { scalarOperand($0, for: op) }
            guard values.allSatisfy({ $0 != nil }) else { return nil }
            return op == .in ? .in(values.map { $0! }) : .notIn(values.map { $0! })
        case .contains, .notContains, .startsWith, .endsWith:
            guard case .string(let text)? = reader.scalarValue(node) else {
                reader.fail(
                    "\(op.rawValue) compares with a string (got \(YAMLReader.describe(node)); quote it to make it one)",
                    at: node)
                return nil
            }
            switch op {
            case .contains: return .contains(text)
            case .notContains: return .notContains(text)
            case .startsWith: return .startsWith(text)
            default: return .endsWith(text)
            }
        case .exists:
            return reader.bool(node, what: "exists").map { .exists($0) }
        }
    }

    /// A string, number or boolean (not null, list or mapping).
    private func scalarOperand(_ node: Node, for op: Predicate.Operator) -> Literal? {
        switch reader.scalarValue(node) {
        case .null?:
            reader.fail(
                "\(op.rawValue) cannot compare with null (use exists: false for a missing or null value)", at: node)
            return nil
        case let value?:
            return value
        case nil:
            reader.fail(
                "\(op.rawValue) compares with a string, number or boolean (got \(YAMLReader.describe(node)))", at: node)
            return nil
        }
    }

    /// A string or number: what `gt`, `gte`, `lt`, `lte` order.
    private func orderedOperand(_ node: Node, for op: Predicate.Operator) -> Literal? {
        switch reader.scalarValue(node) {
        case let value? where value.isNumber: return value
        case .string(let text)?: return .string(text)
        default:
            reader.fail(
                "\(op.rawValue) compares with a number or a string (got \(YAMLReader.describe(node)))", at: node)
            return nil
        }
    }

    /// `count:` — a predicate on the number of matching events: numbers only.
    private func parseCount(_ node: Node) -> Predicate? {
        guard let predicate = parsePredicate(node) else { return nil }
        for comparison in predicate.comparisons {
            switch comparison {
            case .eq(let value), .ne(let value), .gt(let value), .gte(let value), .lt(let value), .lte(let value):
                if !value.isNumber {
                    reader.fail("count compares with numbers (got \(value.json))", at: node)
                    return nil
                }
            case .in(let values), .notIn(let values):
                if !values.allSatisfy(\.isNumber) {
                    reader.fail("count compares with numbers (got \(Literal.list(values).json))", at: node)
                    return nil
                }
            case .contains, .notContains, .startsWith, .endsWith, .exists:
                reader.fail(
                    "count takes eq, ne, gt, gte, lt, lte, in or not_in (got \(comparison.operator.rawValue))", at: node
                )
                return nil
            }
        }
        return predicate
    }

    // MARK: Compute

    private func parseCompute(_ node: Node) -> ComputeSpec? {
        guard
            let fields = reader.fields(
                node, allowed: Self.computeFields, what: "a compute mapping (op, event, property, …)")
        else { return nil }
        let errorsBefore = reader.errors.count
        var op: ComputeSpec.Operation?
        if let value = fields["op"] {
            if case .scalar(let scalar) = value, let parsed = ComputeSpec.Operation(rawValue: scalar.string) {
                op = parsed
            } else {
                let ops = ComputeSpec.Operation.allCases.map(\.rawValue)
                reader.fail(
                    YAMLReader.unknown("op", value.scalar?.string ?? YAMLReader.describe(value), expected: ops),
                    at: value)
            }
        } else {
            reader.fail(
                "missing field 'op' (expected one of \(ComputeSpec.Operation.allCases.map(\.rawValue).joined(separator: ", ")))",
                at: node)
        }
        var event: String?
        if let value = fields["event"] {
            event = reader.string(value, what: "an event name")
        } else {
            reader.fail("missing field 'event' (the track event to compute from)", at: node)
        }
        var property: PropertyPath?
        if let value = fields["property"] {
            if op == .count {
                reader.fail(
                    "count counts events and takes no property (filter with where: instead)", at: fields.key("property")
                )
            } else if let text = reader.string(value, what: "a property path") {
                property = parsePath(text, at: value)
            }
        } else if let op, op != .count {
            reader.fail(
                "missing field 'property' (\(op.rawValue) needs the value to read, like properties.total)", at: node)
        }
        var minFrequency = 1
        if let value = fields["min_frequency"] {
            if op == .mostFrequent {
                if let number = reader.integer(value, what: "min_frequency", in: 1...Int64(Int32.max)) {
                    minFrequency = Int(number)
                }
            } else if op != nil {
                reader.fail("min_frequency applies only to op: most_frequent", at: fields.key("min_frequency"))
            }
        }
        let filters = fields["where"].flatMap { parseWhere($0) }
        let window = parseWindow(fields)
        guard reader.errors.count == errorsBefore, let op, let event, let window else { return nil }
        return ComputeSpec(
            op: op, event: event, property: property, filters: filters ?? [], window: window, minFrequency: minFrequency
        )
    }
}
