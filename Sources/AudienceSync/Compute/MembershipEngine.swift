/// Computes audience membership and computed-trait values inside SQLite (SPEC §4), as of a time
/// `now`: one set-based statement per definition, no per-user round trips, events never loaded
/// into Swift to be filtered.
public final class MembershipEngine {
    public let store: EventStore
    public let definitions: DefinitionSet

    public init(store: EventStore, definitions: DefinitionSet) {
        self.store = store
        self.definitions = definitions
    }

    /// The members of audience `key` at `now`, sorted by user id.
    public func members(key: String, now: Int64) throws -> [String] {
        let definition = try self.definition(key, kind: .audience)
        var compiler = QueryCompiler(definitions: definitions, now: now)
        let sql = compiler.statement(for: definition)
        var members: [String] = []
        let (statement, parameters) = try prepare(sql, compiler.parameters)
        try statement.forEachRow(parameters) { row in
            if let uid = row.text(0) { members.append(uid) }
        }
        return members
    }

    /// The values of computed trait `key` at `now`, by user id; users without a value are absent.
    public func values(key: String, now: Int64) throws -> [String: Literal] {
        let definition = try self.definition(key, kind: .computedTrait)
        var compiler = QueryCompiler(definitions: definitions, now: now)
        let sql = compiler.statement(for: definition)
        var values: [String: Literal] = [:]
        let (statement, parameters) = try prepare(sql, compiler.parameters)
        try statement.forEachRow(parameters) { row in
            guard let uid = row.text(0), let json = row.text(1) else { return }
            values[uid] = try Literal(json: json)
        }
        return values
    }

    /// The value of computed trait `key` for one user at `now` (nil: none).
    public func values(key: String, now: Int64, userId: String) throws -> Literal? {
        let definition = try self.definition(key, kind: .computedTrait)
        var compiler = QueryCompiler(definitions: definitions, now: now)
        let values = compiler.computedValues(definition)
        let user = compiler.bind(.text(userId))
        let sql = compiler.withCTEs("SELECT value FROM (\(values)) WHERE uid = \(user)")
        return try run(sql, compiler.parameters).first?.first?.string.map { try Literal(json: $0) }
    }

    /// Runs a compiled statement and returns its rows.
    func run(_ sql: String, _ parameters: [SQLiteValue]) throws -> [[SQLiteValue]] {
        let (statement, bound) = try prepare(sql, parameters)
        return try statement.rows(bound)
    }

    /// The SQL and parameters the engine runs for `key` (for `explain --sql` and the benchmark).
    public func statement(key: String, now: Int64) throws -> (sql: String, parameters: [SQLiteValue]) {
        guard let definition = definitions[key: key] else { throw unknown(key) }
        var compiler = QueryCompiler(definitions: definitions, now: now)
        let sql = compiler.statement(for: definition)
        return (sql, compiler.parameters)
    }

    /// Prepares a compiled statement. A predicate that is constant (`in: []`) leaves the path bound
    /// for it unreferenced; parameters past the highest one the SQL references are dropped.
    private func prepare(_ sql: String, _ parameters: [SQLiteValue]) throws -> (Statement, [SQLiteValue]) {
        let statement = try store.database.prepare(sql)
        return (statement, Array(parameters.prefix(statement.parameterCount)))
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

    private func unknown(_ key: String) -> AudienceSyncError {
        let keys = definitions.definitions.map(\.key).sorted().joined(separator: ", ")
        return AudienceSyncError(.usage, "no enabled definition has the key '\(key)' (expected one of \(keys))")
    }
}

extension Literal {
    /// The literal of a JSON text (a computed value as SQLite returns it).
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
