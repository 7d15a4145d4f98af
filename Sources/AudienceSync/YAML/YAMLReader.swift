import Yams

/// Reads typed values out of a YAML document and collects every error with its file, line and
/// column, so that one pass reports all problems of a file.
///
/// Errors are recorded, not thrown: a reader method returns nil after recording what was wrong,
/// and the caller carries on with the next field.
final class YAMLReader {
    /// The file as the user named it.
    let file: String
    /// `.configuration` or `.definition`.
    let code: AudienceSyncError.Code
    /// Every error found so far, in the order found.
    private(set) var errors: [AudienceSyncError] = []

    init(file: String, code: AudienceSyncError.Code) {
        self.file = file
        self.code = code
    }

    /// Plain scalars typed by the YAML 1.2 core schema, narrowed to JSON (see `Literal`):
    /// no YAML 1.1 `yes`/`no`/`on`/`off` booleans, octal, sexagesimal numbers or timestamps.
    static let resolver: Resolver = {
        // swiftlint:disable force_try
        Resolver.basic
            .appending(try! .init(.null, "^(?:~|null|Null|NULL|)$"))
            .appending(try! .init(.bool, "^(?:true|True|TRUE|false|False|FALSE)$"))
            .appending(try! .init(.int, "^[-+]?(?:0|[1-9][0-9]*)$"))
            .appending(
                try! .init(
                    .float,
                    "^[-+]?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$|^[-+]?\\.[0-9]+(?:[eE][-+]?[0-9]+)?$|^[-+]?(?:0|[1-9][0-9]*)\\.$"
                ))
    }()

    /// Parses `text`; records a syntax error (with its line and column) and returns nil when it is
    /// not YAML. Also nil for an empty document.
    func compose(_ text: String) -> Node? {
        do {
            return try Yams.compose(yaml: text, YAMLReader.resolver)
        } catch let error as YamlError {
            record(error)
        } catch {
            fail("cannot parse YAML: \(error)")
        }
        return nil
    }

    private func record(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            fail(message, line: mark.line, column: mark.column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            fail("duplicate field \(names) in one mapping", line: context.mark.line, column: context.mark.column)
        case .reader(let problem, let offset, _, let yaml):
            var line = 1
            var column = 1
            if let offset {
                for character in yaml.utf8.prefix(offset) {
                    if character == 0x0A {
                        line += 1
                        column = 1
                    } else if character & 0xC0 != 0x80 {
                        column += 1
                    }
                }
            }
            fail("unreadable YAML: \(problem)", line: line, column: column)
        default:
            fail("cannot parse YAML: \(error)")
        }
    }

    // MARK: Errors

    /// Records an error at `node`'s position (or at the file when there is none).
    func fail(_ message: String, at node: Node?) {
        fail(message, line: node?.mark?.line, column: node?.mark?.column)
    }

    /// Records an error at `line`:`column` of the file.
    func fail(_ message: String, line: Int? = nil, column: Int? = nil) {
        errors.append(AudienceSyncError(code, message, file: file, line: line, column: column))
    }

    /// The kind of YAML node, for "expected X (got Y)" messages.
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return "nothing"
            case .str: return "'\(scalar.string)'"
            default: return scalar.string
            }
        }
    }

    // MARK: Mappings

    /// The fields of a mapping, by name, each with its key node (for positions).
    struct Fields {
        /// The mapping node itself.
        let node: Node
        private(set) var entries: [(name: String, key: Node, value: Node)] = []

        init(node: Node, entries: [(name: String, key: Node, value: Node)]) {
            self.node = node
            self.entries = entries
        }

        subscript(_ name: String) -> Node? { entries.first { $0.name == name }?.value }
        func key(_ name: String) -> Node? { entries.first { $0.name == name }?.key }
        func has(_ name: String) -> Bool { entries.contains { $0.name == name } }
        var names: [String] { entries.map(\.name) }
    }

    /// The entries of `node` as `Fields`, recording an error for each field not in `allowed`
    /// (those are left out). Nil, with an error, when `node` is not a mapping.
    func fields(_ node: Node, allowed: [String], what: String) -> Fields? {
        guard let mapping = mapping(node, what: what) else { return nil }
        var entries: [(name: String, key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, key.tagName != .null else {
                fail("expected a field name (got \(YAMLReader.describe(key)))", at: key)
                continue
            }
            guard allowed.contains(scalar.string) else {
                fail(YAMLReader.unknown("field", scalar.string, expected: allowed), at: key)
                continue
            }
            entries.append((scalar.string, key, value))
        }
        return Fields(node: node, entries: entries)
    }

    /// `unknown field 'nmae' (expected one of name, key, kind)`.
    static func unknown(_ thing: String, _ name: String, expected: [String]) -> String {
        "unknown \(thing) '\(name)' (expected "
            + (expected.count == 1 ? "\(expected[0]))" : "one of \(expected.joined(separator: ", ")))")
    }

    /// `node` as a mapping, or nil with an error.
    func mapping(_ node: Node, what: String) -> Node.Mapping? {
        if case .mapping(let mapping) = node { return mapping }
        fail("expected \(what) (got \(YAMLReader.describe(node)))", at: node)
        return nil
    }

    /// `node` as a list, or nil with an error.
    func list(_ node: Node, what: String) -> [Node]? {
        if case .sequence(let sequence) = node { return Array(sequence) }
        fail("expected \(what) (got \(YAMLReader.describe(node)))", at: node)
        return nil
    }

    // MARK: Scalars

    /// The text of a scalar that is not null: `name: 2024` gives `"2024"`. Nil, with an error,
    /// for null, a list or a mapping, and (unless `allowEmpty`) for an empty string.
    func string(_ node: Node, what: String, allowEmpty: Bool = false) -> String? {
        guard case .scalar(let scalar) = node, node.tagName != .null else {
            fail("expected \(what) (got \(YAMLReader.describe(node)))", at: node)
            return nil
        }
        if !allowEmpty && scalar.string.trimmingWhitespace.isEmpty {
            fail("expected \(what) (got an empty string)", at: node)
            return nil
        }
        return scalar.string
    }

    /// A `true`/`false` scalar.
    func bool(_ node: Node, what: String) -> Bool? {
        if case .scalar(let scalar) = node, node.tagName == .bool { return scalar.string.lowercased() == "true" }
        fail("expected \(what): true or false (got \(YAMLReader.describe(node)))", at: node)
        return nil
    }

    /// An integer scalar within `range`.
    func integer(_ node: Node, what: String, in range: ClosedRange<Int64>) -> Int64? {
        if case .integer(let value) = scalarValue(node), range.contains(value) { return value }
        let bounds =
            range.upperBound == Int64.max
            ? "at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
        fail("expected \(what): an integer \(bounds) (got \(YAMLReader.describe(node)))", at: node)
        return nil
    }

    /// A number scalar (integer or decimal) within `range`.
    func number(_ node: Node, what: String, in range: ClosedRange<Double>) -> Double? {
        if let value = scalarValue(node)?.doubleValue, range.contains(value) { return value }
        fail(
            "expected \(what): a number from \(range.lowerBound.formatted) to \(range.upperBound.formatted) (got \(YAMLReader.describe(node)))",
            at: node)
        return nil
    }

    /// A duration scalar (`90m`, `2h`, `30d`, `1w`, `1d12h`).
    func duration(_ node: Node, positive: Bool = false) -> Duration? {
        if case .scalar(let scalar) = node, let duration = Duration(parsing: scalar.string) {
            if positive && duration.milliseconds == 0 {
                fail("expected a duration longer than zero (got '\(scalar.string)')", at: node)
                return nil
            }
            return duration
        }
        let got: String
        if case .scalar(let scalar) = node, node.tagName != .null {
            got = "'\(scalar.string)'"
        } else {
            got = YAMLReader.describe(node)
        }
        fail("expected \(Duration.expected) (got \(got))", at: node)
        return nil
    }

    /// A scalar as a typed `Literal`; nil for lists, mappings and aliases (no error recorded).
    func scalarValue(_ node: Node) -> Literal? {
        guard case .scalar(let scalar) = node else { return nil }
        let text = scalar.string
        switch node.tagName {
        case .null: return .null
        case .bool: return .bool(text.lowercased() == "true")
        case .int:
            if let value = Int64(text.hasPrefix("+") ? String(text.dropFirst()) : text) { return .integer(value) }
            return Double(text).map(Literal.double)  // beyond Int64: keep it a number
        case .float:
            guard let value = Double(text.hasSuffix(".") ? text + "0" : text), value.isFinite else {
                return .string(text)
            }
            return .double(value)
        default: return .string(text)
        }
    }
}

extension String {
    /// The string without leading and trailing whitespace.
    var trimmingWhitespace: Substring {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return Substring(scalars[first...last])
    }
}

extension Double {
    /// `5` for 5.0, `0.5` for 0.5: a number as a person writes it.
    var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : "\(self)" }
}

extension Node {
    /// The resolved tag (`str`, `int`, `null`, …) of this node.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
