/// Computes audience membership and computed-trait values (SPEC §4) as of a time `now`: one
/// set-based statement per definition, compiled for the source's engine and run inside it — no
/// per-user round trips, events never loaded into Swift to be filtered.
public struct MembershipEngine: Sendable {
    public let source: any MembershipSource
    public let definitions: DefinitionSet

    public init(source: any MembershipSource, definitions: DefinitionSet) {
        self.source = source
        self.definitions = definitions
    }

    /// The members of audience `key` at `now`, by the bytes of their user ids.
    public func members(key: String, now: Int64) async throws -> [String] {
        let definition = try self.definition(key, kind: .audience)
        return try await source.memberIDs(compiler(now: now).statementFor(definition))
    }

    /// The values of computed trait `key` at `now`, by user id; users without a value are absent.
    public func values(key: String, now: Int64) async throws -> [String: Literal] {
        let definition = try self.definition(key, kind: .computedTrait)
        var values: [String: Literal] = [:]
        for row in try await source.memberValues(compiler(now: now).statementFor(definition)) {
            values[row.userId] = try Literal(json: row.value)
        }
        return values
    }

    /// The value of computed trait `key` for one user at `now` (nil: none).
    public func values(key: String, now: Int64, userId: String) async throws -> Literal? {
        let definition = try self.definition(key, kind: .computedTrait)
        var compiler = compiler(now: now)
        let query = compiler.computedValueQuery(definition, userId: userId)
        return try await source.rows(query).first?.first?.string.map { try Literal(json: $0) }
    }

    /// The statement the engine runs for `key`, with its binds (for `members --sql`, the diff and
    /// the benchmark).
    public func statement(key: String, now: Int64) throws -> CompiledQuery {
        guard let definition = definitions[key: key] else { throw unknown(key) }
        return compiler(now: now).statementFor(definition)
    }

    func compiler(now: Int64) -> QueryCompiler {
        QueryCompiler(definitions: definitions, dialect: source.dialect, now: now)
    }

    private func definition(_ key: String, kind: Definition.Kind) throws -> Definition {
        guard let definition = definitions[key: key] else { throw unknown(key) }
        guard definition.kind == kind else {
            throw AudienceSyncError(
                .usage,
                "'\(key)' is a \(definition.kind.rawValue), not a \(kind.rawValue)", file: definition.file)
        }
        return definition
    }

    func unknown(_ key: String) -> AudienceSyncError {
        let keys = definitions.definitions.map(\.key).sorted().joined(separator: ", ")
        return AudienceSyncError(.usage, "no enabled definition has the key '\(key)' (expected one of \(keys))")
    }
}

extension QueryCompiler {
    /// `statement(for:)` on a fresh copy.
    fileprivate func statementFor(_ definition: Definition) -> CompiledQuery {
        var compiler = self
        return compiler.statement(for: definition)
    }
}

extension Literal {
    /// The literal of a JSON text (a computed value as the store returns it).
    init(json: String) throws {
        self = Literal(try JSONValue.parse(json))
    }

    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .string(let text): self = .string(text)
        case .number(let text):
            if let integer = Int64(text) {
                self = .integer(integer)
            } else {
                self = .double(Double(text) ?? .nan)
            }
        case .array(let elements): self = .list(elements.map(Literal.init))
        case .object: self = .string(value.jsonString)
        }
    }
}
