/// A value bound to a compiled statement, in no engine's terms: each store converts it to its
/// driver's (SQLite binds a boolean as 1/0, PostgreSQL as `boolean`).
public enum SQLValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case boolean(Bool)

    /// The value with its type, as `members --sql` lists binds: `text("pro")`, `integer(5)`.
    public var description: String {
        switch self {
        case .null: return "null"
        case .integer(let value): return "integer(\(value))"
        case .real(let value): return "real(\(value))"
        case .text(let value): return "text(\(Literal.quote(value)))"
        case .boolean(let value): return "boolean(\(value))"
        }
    }

    public var int64: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }
}

/// A compiled statement: SQL text in one engine's dialect and the values of its placeholders, in
/// order (placeholder `n` takes `binds[n - 1]`). Every value a user wrote is a bind, never text.
public struct CompiledQuery: Sendable, Equatable {
    public var sql: String
    public var binds: [SQLValue]

    public init(sql: String, binds: [SQLValue]) {
        self.sql = sql
        self.binds = binds
    }
}

/// The JSON types a dialect reports for a value (SPEC §4.2: numbers, strings and booleans are
/// compared only with their own kind; integers and decimals are both numbers).
public enum JSONTypeName: String, Sendable, CaseIterable {
    case integer, real, text, `true`, `false`, null, array, object
}

/// Every SQL fragment that depends on the database engine (SPEC §9), asked for by the query
/// compiler, which writes only SQL both engines read the same way. Modelled on SQLKit's
/// `SQLDialect`: the compiler says what it means, the dialect says how the engine spells it.
///
/// JSON is read in three typed forms, so that no engine ever converts a value of one type to
/// another (PostgreSQL does not promise the order of `AND`, so a cast must be safe on any value):
/// its type (`jsonType`, one of `JSONTypeName` as text, SQL NULL when the path is missing), its
/// number (NULL unless a number) and its string (NULL unless a string). Comparisons then test the
/// type first and the typed value second.
public protocol SQLDialect: Sendable {
    /// The placeholder of bind `index` (1-based): `?3` in SQLite, `$3` in PostgreSQL.
    func placeholder(_ index: Int) -> String

    /// A condition as a value that is true or false, never NULL, usable under `NOT`, `AND`, `OR`
    /// and in a `WHERE` clause.
    func definitely(_ condition: String) -> String

    /// A condition that is always false (an empty `in: []`), likewise never NULL.
    var alwaysFalse: String { get }

    /// The SQL of a JSON path, binding what it needs through `bind` (which returns a placeholder).
    func jsonPath(_ path: PropertyPath, bind: (SQLValue) -> String) -> String

    /// The JSON type name (`JSONTypeName`) at `path` of the message column `document`; NULL when
    /// the path is missing.
    func jsonType(_ document: String, _ path: String) -> String
    /// The number at `path`, NULL when it is not a number.
    func jsonNumber(_ document: String, _ path: String) -> String
    /// The string at `path`, NULL when it is not a string.
    func jsonString(_ document: String, _ path: String) -> String
    /// The value at `path` as JSON text (`"a"`, `5`, `true`, `{…}`), NULL when missing.
    func jsonText(_ document: String, _ path: String) -> String

    /// Whether `jsonNumber` is NULL unless the value is a number and `jsonString` NULL unless it
    /// is a string (PostgreSQL's, which must guard every cast anyway), so that a comparison of a
    /// number or a string needs no type test of its own. False where a reading converts (SQLite's
    /// `json_extract` reads `true` as 1): there every comparison tests the type first.
    var readingsAreTyped: Bool { get }

    /// The same three readings of `json`, an expression holding one JSON text (a computed value).
    func jsonTextType(_ json: String) -> String
    func jsonTextNumber(_ json: String) -> String
    func jsonTextString(_ json: String) -> String

    /// A number (an SQL number expression) as JSON text.
    func jsonOfNumber(_ number: String) -> String
    /// An aggregate building a JSON array of JSON texts, in the order rows reach it.
    func jsonArrayAggregate(_ jsonText: String) -> String

    /// Whether `type`, an expression of `jsonType`, is one of `types`.
    func typeIs(_ type: String, _ types: [JSONTypeName]) -> String

    /// Case-sensitive substring and affix tests of strings.
    func contains(_ value: String, _ needle: String) -> String
    func startsWith(_ value: String, _ prefix: String) -> String
    func endsWith(_ value: String, _ suffix: String) -> String

    /// `value` compared and ordered by its UTF-8 bytes (user ids, strings of events).
    func byteOrdered(_ value: String) -> String

    /// The smaller of two numbers.
    func least(_ first: String, _ second: String) -> String

    /// Appended to a subquery so that the engine keeps it whole (evaluated once, not flattened
    /// into the query around it): SQLite's `LIMIT -1`, PostgreSQL's `OFFSET 0`.
    var noFlattenFence: String { get }

    /// What follows a derived table `(SELECT …)` in a FROM clause: nothing in SQLite, an alias
    /// (required) in PostgreSQL.
    func derivedTableAlias(_ name: String) -> String
}

extension SQLDialect {
    /// `(SELECT …)` with the alias the engine needs.
    func derived(_ sql: String, alias: String) -> String {
        "(\(sql))" + derivedTableAlias(alias)
    }
}
