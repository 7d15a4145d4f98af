/// PostgreSQL's spelling of the query compiler's engine-specific fragments (`SQLDialect`), with the
/// semantics of SPEC §4 exactly as SQLite gives them:
///
/// - A JSON path is one bound `text[]` read with `#>`. Every reading first asks `jsonb_typeof`,
///   and only a value of the right type is cast (inside a `CASE`, which PostgreSQL evaluates in
///   order, unlike `AND`), so no cast ever raises on a value of another type.
/// - Types are SQLite's names: a number is `integer` when its `numeric` has no digits after the
///   point (jsonb keeps `5.0` as written, with scale 1), else `real`; a boolean is `true` or
///   `false`. A comparison needs no type name (`readingsAreTyped`): the typed reading is NULL on
///   a value of any other type.
/// - Numbers are read as `numeric`, compared by value with the bound literals; strings are
///   compared and ordered by their UTF-8 bytes (`COLLATE "C"`; the store's text columns are "C").
/// - A computed number is spelled as SQLite spells it (`jsonOfNumber`): an average of 2 and 4 is
///   `3.0`, not `3.0000000000000000`.
public struct PostgresDialect: SQLDialect {
    public init() {}

    public func placeholder(_ index: Int) -> String { "$\(index)" }

    public func definitely(_ condition: String) -> String { "(CASE WHEN \(condition) THEN true ELSE false END)" }

    public var alwaysFalse: String { "false" }

    public func jsonPath(_ path: PropertyPath, bind: (SQLValue) -> String) -> String {
        "\(bind(.text(Self.arrayLiteral(path.keys))))::text[]"
    }

    /// The keys as a PostgreSQL array literal (a bound value, never SQL text): every element
    /// double-quoted, with `"` and `\` backslash-escaped.
    static func arrayLiteral(_ keys: [String]) -> String {
        var text = "{"
        for (index, key) in keys.enumerated() {
            if index > 0 { text += "," }
            text += "\""
            for character in key {
                if character == "\"" || character == "\\" { text += "\\" }
                text.append(character)
            }
            text += "\""
        }
        return text + "}"
    }

    /// The type of the jsonb expression `value` under SQLite's names (NULL when it is NULL).
    private func typeName(_ value: String) -> String {
        """
        (CASE jsonb_typeof(\(value)) WHEN 'number' THEN (CASE WHEN scale((\(value))::numeric) = 0 THEN 'integer' ELSE 'real' END) \
        WHEN 'string' THEN 'text' WHEN 'boolean' THEN (CASE WHEN (\(value)) = 'true'::jsonb THEN 'true' ELSE 'false' END) \
        ELSE jsonb_typeof(\(value)) END)
        """
    }

    private func number(_ value: String) -> String {
        "(CASE WHEN jsonb_typeof(\(value)) = 'number' THEN (\(value))::numeric END)"
    }

    private func string(_ value: String) -> String {
        "(CASE WHEN jsonb_typeof(\(value)) = 'string' THEN (\(value)) #>> '{}' END) COLLATE \"C\""
    }

    public func jsonType(_ document: String, _ path: String) -> String { typeName("\(document) #> \(path)") }
    public func jsonNumber(_ document: String, _ path: String) -> String { number("\(document) #> \(path)") }
    public func jsonString(_ document: String, _ path: String) -> String { string("\(document) #> \(path)") }
    public func jsonText(_ document: String, _ path: String) -> String {
        "((\(document) #> \(path))::text COLLATE \"C\")"
    }

    /// A number is read only from a JSON number, a string only from a JSON string.
    public var readingsAreTyped: Bool { true }

    public func jsonTextType(_ json: String) -> String { typeName("(\(json))::jsonb") }
    public func jsonTextNumber(_ json: String) -> String { number("(\(json))::jsonb") }
    public func jsonTextString(_ json: String) -> String { string("(\(json))::jsonb") }

    /// A number as SQLite's JSON spells it, so that both stores send the same text (and the same
    /// messageIds, which hash it): a whole number of scale 0 as an integer (`49`); any other as a
    /// double in its shortest form, with `.0` when it would look whole (`49.0`, `3.5`), as
    /// SQLite's real numbers are written (its `avg` is always real, PostgreSQL's is a `numeric`
    /// of scale 16).
    public func jsonOfNumber(_ number: String) -> String {
        let value = "((\(number))::numeric)"
        let double = "((\(value))::float8::text)"
        return "(CASE WHEN scale(\(value)) = 0 THEN \(value)::text WHEN \(double) ~ '[.eEn]' THEN \(double) ELSE \(double) || '.0' END)"
    }
    public func jsonArrayAggregate(_ jsonText: String) -> String { "jsonb_agg((\(jsonText))::jsonb)" }

    public func typeIs(_ type: String, _ types: [JSONTypeName]) -> String {
        guard types.count != 1 else { return "\(type) = '\(types[0].rawValue)'" }
        return "\(type) IN (" + types.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }

    public func contains(_ value: String, _ needle: String) -> String { "strpos(\(value), \(needle)) > 0" }
    public func startsWith(_ value: String, _ prefix: String) -> String {
        "left(\(value), length(\(prefix))) = \(prefix)"
    }
    public func endsWith(_ value: String, _ suffix: String) -> String {
        "right(\(value), length(\(suffix))) = \(suffix)"
    }

    public func byteOrdered(_ value: String) -> String { "(\(value)) COLLATE \"C\"" }

    public func least(_ first: String, _ second: String) -> String { "least(\(first), \(second))" }

    public var noFlattenFence: String { " OFFSET 0" }

    public func derivedTableAlias(_ name: String) -> String { " AS \(name)" }
}
