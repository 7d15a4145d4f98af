/// SQLite's spelling of the query compiler's engine-specific fragments (`SQLDialect`).
///
/// JSON is read with SQLite's JSON functions: `json_type` gives SQLite's type names, which are
/// `JSONTypeName`'s; `json_extract` gives the SQL value (a number, text, or 1/0 for booleans),
/// which the compiler reads only after testing the type, so one expression serves as both the
/// number and the string reading. Text compares by its bytes (SQLite's BINARY collation).
public struct SQLiteDialect: SQLDialect {
    public init() {}

    public func placeholder(_ index: Int) -> String { "?\(index)" }

    public func definitely(_ condition: String) -> String { "(CASE WHEN \(condition) THEN 1 ELSE 0 END)" }

    public var alwaysFalse: String { "0" }

    public func jsonPath(_ path: PropertyPath, bind: (SQLValue) -> String) -> String {
        bind(.text(Self.jsonPathText(path)))
    }

    /// The path for SQLite's JSON functions, every key double-quoted: `$."properties"."Plan Name"`.
    ///
    /// Parsed paths never contain `"` or `\`; for keys built otherwise both are backslash-escaped,
    /// which SQLite 3.45 and later understand.
    public static func jsonPathText(_ path: PropertyPath) -> String {
        var text = "$"
        for key in path.keys {
            text += ".\""
            for character in key {
                if character == "\"" || character == "\\" { text += "\\" }
                text.append(character)
            }
            text += "\""
        }
        return text
    }

    public func jsonType(_ document: String, _ path: String) -> String { "json_type(\(document), \(path))" }
    public func jsonNumber(_ document: String, _ path: String) -> String { "json_extract(\(document), \(path))" }
    public func jsonString(_ document: String, _ path: String) -> String { "json_extract(\(document), \(path))" }
    public func jsonText(_ document: String, _ path: String) -> String { "(\(document) -> \(path))" }

    /// `json_extract` reads `true` as 1: a comparison tests the type first.
    public var readingsAreTyped: Bool { false }

    public func jsonTextType(_ json: String) -> String { "json_type(\(json), '$')" }
    public func jsonTextNumber(_ json: String) -> String { "json_extract(\(json), '$')" }
    public func jsonTextString(_ json: String) -> String { "json_extract(\(json), '$')" }

    public func jsonOfNumber(_ number: String) -> String { "json_quote(\(number))" }
    public func jsonArrayAggregate(_ jsonText: String) -> String { "json_group_array(json(\(jsonText)))" }

    public func typeIs(_ type: String, _ types: [JSONTypeName]) -> String {
        guard types.count != 1 else { return "\(type) = '\(types[0].rawValue)'" }
        return "\(type) IN (" + types.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }

    public func contains(_ value: String, _ needle: String) -> String { "instr(\(value), \(needle)) > 0" }
    public func startsWith(_ value: String, _ prefix: String) -> String {
        "substr(\(value), 1, length(\(prefix))) = \(prefix)"
    }
    public func endsWith(_ value: String, _ suffix: String) -> String {
        "(length(\(suffix)) = 0 OR (length(\(value)) >= length(\(suffix)) AND substr(\(value), -length(\(suffix))) = \(suffix)))"
    }

    public func byteOrdered(_ value: String) -> String { value }

    public func least(_ first: String, _ second: String) -> String { "min(\(first), \(second))" }

    public var noFlattenFence: String { " LIMIT -1" }

    public func derivedTableAlias(_ name: String) -> String { "" }
}
