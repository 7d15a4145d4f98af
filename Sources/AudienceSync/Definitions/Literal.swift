/// A literal value (a JSON scalar or list) as written in a definition, keeping the YAML type (SPEC §4.2: comparisons are
/// strictly typed).
///
/// Plain YAML scalars follow the YAML 1.2 core schema, narrowed to what JSON can hold:
/// `5` and `-3` are integers, `2.5` and `1e3` doubles, `true`/`false` booleans, `null`/`~`/empty
/// null; everything else — and every quoted scalar (`"5"`, `'true'`) — is a string. In particular
/// `yes`, `no`, `on`, `off`, `007`, `1:30` and `2026-01-01` are strings, not YAML 1.1 booleans,
/// octal or sexagesimal numbers or timestamps.
public enum Literal: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case list([Literal])

    /// Whether this is a number (`integer` or `double`); numbers compare with each other.
    public var isNumber: Bool {
        switch self {
        case .integer, .double: return true
        default: return false
        }
    }

    /// The number as a `Double`, for `integer` and `double`.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The value as JSON text (`"a\"b"`, `5`, `2.5`, `true`, `null`, `[1,"x"]`).
    public var json: String {
        switch self {
        case .string(let value): return Literal.quote(value)
        case .integer(let value): return String(value)
        case .double(let value):
            if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) + ".0" }
            return "\(value)"
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .list(let values): return "[" + values.map(\.json).joined(separator: ",") + "]"
        }
    }

    public var description: String { json }

    /// `text` as a JSON string literal, escaping `"`, `\` and control characters.
    public static func quote(_ text: String) -> String {
        var bytes: [UInt8] = []
        JSONValue.writeString(text, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
