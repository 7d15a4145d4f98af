import Foundation
import Yams

/// Every definition of a definitions folder, checked together (SPEC §4).
public struct DefinitionSet: Sendable {
    /// The enabled definitions, in file-name order.
    public var definitions: [Definition]
    /// The definitions with `enabled: false`: parsed and checked on their own, then left out.
    public var disabled: [Definition]
    /// The enabled definitions with every definition after those it refers to (`in_audience`,
    /// `computed`): the order to compute them in. Otherwise in file-name order.
    public var evaluationOrder: [Definition]

    public init(definitions: [Definition], disabled: [Definition] = [], evaluationOrder: [Definition]) {
        self.definitions = definitions
        self.disabled = disabled
        self.evaluationOrder = evaluationOrder
    }

    /// The enabled definition with trait key `key`.
    public subscript(key key: String) -> Definition? { definitions.first { $0.key == key } }

    /// Loads every `*.yml` and `*.yaml` file of `directory` (not its subfolders, not hidden files),
    /// in file-name order.
    ///
    /// All problems of all files are reported at once: one `AudienceSyncError` when there is one,
    /// else `AudienceSyncErrors`, ordered by file, line and column.
    public static func load(directory: String, configuration: Configuration) throws -> DefinitionSet {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw AudienceSyncError(.definition, "cannot read the definitions folder", file: directory)
        }
        var files: [(path: String, text: String)] = []
        var errors: [AudienceSyncError] = []
        for name in names.sorted() where !name.hasPrefix(".") && (name.hasSuffix(".yml") || name.hasSuffix(".yaml")) {
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                continue
            }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
            else {
                errors.append(AudienceSyncError(.definition, "cannot read the file as UTF-8 text", file: path))
                continue
            }
            files.append((path, text))
        }
        return try check(files: files, configuration: configuration, errors: errors)
    }

    /// Checks definitions given as (file, text) pairs, as `load` does for a folder's files.
    public static func parse(files: [(path: String, text: String)], configuration: Configuration) throws
        -> DefinitionSet
    {
        try check(files: files, configuration: configuration, errors: [])
    }

    private static func check(
        files: [(path: String, text: String)], configuration: Configuration, errors initialErrors: [AudienceSyncError]
    ) throws -> DefinitionSet {
        var errors = initialErrors
        var parsed: [ParsedDefinition] = []
        for (path, text) in files {
            let reader = YAMLReader(file: path, code: .definition)
            var parser = DefinitionParser(reader: reader, configuration: configuration)
            if let definition = parser.parse(text) { parsed.append(definition) }
            errors += reader.errors
        }
        let enabled = parsed.filter(\.definition.enabled)
        errors += crossCheck(enabled, disabled: parsed.filter { !$0.definition.enabled }, configuration: configuration)

        if !errors.isEmpty {
            let sorted = errors.enumerated().sorted { a, b in
                let left = (a.element.file ?? "", a.element.line ?? 0, a.element.column ?? 0, a.offset)
                let right = (b.element.file ?? "", b.element.line ?? 0, b.element.column ?? 0, b.offset)
                return left < right
            }.map(\.element)
            if sorted.count == 1 { throw sorted[0] }
            throw AudienceSyncErrors(sorted)
        }
        let definitions = enabled.map(\.definition)
        return DefinitionSet(
            definitions: definitions,
            disabled: parsed.filter { !$0.definition.enabled }.map(\.definition),
            evaluationOrder: evaluationOrder(definitions))
    }

    /// Checks among enabled definitions: unique names and keys, configured destinations,
    /// references to existing definitions of the right kind, no cycles.
    private static func crossCheck(
        _ enabled: [ParsedDefinition], disabled: [ParsedDefinition], configuration: Configuration
    ) -> [AudienceSyncError] {
        var errors: [AudienceSyncError] = []
        func fail(_ message: String, _ file: String, at node: Node?) {
            errors.append(
                AudienceSyncError(.definition, message, file: file, line: node?.mark?.line, column: node?.mark?.column))
        }
        func place(_ file: String, _ node: Node) -> String {
            guard let mark = node.mark else { return file }
            return "\(file):\(mark.line):\(mark.column)"
        }

        var byName: [String: ParsedDefinition] = [:]
        var byKey: [String: ParsedDefinition] = [:]
        var valid: [ParsedDefinition] = []
        for item in enabled {
            let definition = item.definition
            var duplicate = false
            if let first = byName[definition.name] {
                fail(
                    "duplicate name '\(definition.name)' (also in \(place(first.definition.file, first.nameNode)))",
                    definition.file, at: item.nameNode)
                duplicate = true
            }
            if let first = byKey[definition.key] {
                fail(
                    "duplicate key '\(definition.key)' (also the key of \(place(first.definition.file, first.keyNode)))",
                    definition.file, at: item.keyNode)
                duplicate = true
            }
            if duplicate { continue }
            byName[definition.name] = item
            byKey[definition.key] = item
            valid.append(item)
        }

        // References: to an existing enabled definition of the right kind.
        var edges: [String: [(key: String, node: Node)]] = [:]
        for item in valid {
            for (reference, node) in item.references {
                let head = reference.isAudience ? "in_audience" : "computed"
                guard let target = byKey[reference.key] else {
                    if let off = disabled.first(where: { $0.definition.key == reference.key }) {
                        fail(
                            "\(head) '\(reference.key)' refers to a disabled definition (\(off.definition.file))",
                            item.definition.file, at: node)
                    } else {
                        let wanted: Definition.Kind = reference.isAudience ? .audience : .computedTrait
                        let candidates = valid.filter { $0.definition.kind == wanted }.map(\.definition.key)
                        let known =
                            candidates.isEmpty
                            ? "there are none" : "expected one of \(candidates.joined(separator: ", "))"
                        let what = reference.isAudience ? "audience" : "computed trait"
                        fail(
                            "\(head) '\(reference.key)' refers to no \(what) (\(known))", item.definition.file, at: node
                        )
                    }
                    continue
                }
                switch (reference.isAudience, target.definition.kind) {
                case (true, .computedTrait):
                    fail(
                        "in_audience '\(reference.key)' refers to a computed trait (\(target.definition.file)); use computed: \(reference.key) with a predicate",
                        item.definition.file, at: node)
                case (false, .audience):
                    fail(
                        "computed '\(reference.key)' refers to an audience (\(target.definition.file)); use in_audience: \(reference.key)",
                        item.definition.file, at: node)
                default:
                    edges[item.definition.key, default: []].append((reference.key, node))
                }
            }
        }

        // Cycles: each back edge of a depth-first search closes one cycle.
        var state: [String: Int] = [:]  // 1 on the stack, 2 done
        var stack: [String] = []
        func visit(_ key: String) {
            state[key] = 1
            stack.append(key)
            for (target, node) in edges[key] ?? [] {
                switch state[target] {
                case 1?:
                    let cycle = stack[stack.lastIndex(of: target)!...] + [target]
                    fail(
                        "circular reference: \(cycle.joined(separator: " -> "))", byKey[key]!.definition.file, at: node)
                case nil: visit(target)
                default: break
                }
            }
            stack.removeLast()
            state[key] = 2
        }
        for item in valid where state[item.definition.key] == nil { visit(item.definition.key) }
        return errors
    }

    /// Dependencies first, otherwise in the given order. Assumes no cycles.
    static func evaluationOrder(_ definitions: [Definition]) -> [Definition] {
        var byKey: [String: Definition] = [:]
        for definition in definitions where byKey[definition.key] == nil { byKey[definition.key] = definition }
        var done: Set<String> = []
        var order: [Definition] = []
        func visit(_ definition: Definition) {
            guard done.insert(definition.key).inserted else { return }
            for reference in definition.references {
                if let target = byKey[reference.key] { visit(target) }
            }
            order.append(definition)
        }
        definitions.forEach(visit)
        return order
    }
}

extension Condition.Reference {
    var isAudience: Bool {
        if case .audience = self { return true }
        return false
    }
}
