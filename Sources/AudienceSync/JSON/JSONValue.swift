/// A JSON value. Objects keep their members in order (output documents are written in a fixed
/// field order); `canonicalBytes` sorts them.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number, kept as its JSON text so that no precision is lost or invented.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([Member])

    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSONValue
        public init(_ key: String, _ value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    public static func int<T: BinaryInteger>(_ value: T) -> JSONValue { .number(String(value)) }

    public static func double(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        if value == value.rounded(), abs(value) < 1e15 { return .number(String(Int64(value))) }
        return .number("\(value)")
    }

    public static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// An object from key–value pairs, in that order.
    public static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { Member($0.key, $0.value) })
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var kind: JSONKind {
        switch self {
        case .null: return .null
        case .bool: return .bool
        case .number: return .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        }
    }

    // MARK: Parsing

    /// Parses one JSON document.
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parse($0) }
    }

    /// Parses one JSON document from UTF-8 bytes.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var scanner = JSONScanner(bytes)
        _ = try scanner.validateDocument()
        var builder = Builder(bytes: bytes)
        builder.skipWhitespace()
        return builder.value()
    }

    /// Builds a tree from text the scanner has already validated.
    private struct Builder {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A
                || bytes[index] == 0x0D
            {
                index += 1
            }
        }

        mutating func value() -> JSONValue {
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [Member] = []
                skipWhitespace()
                while bytes[index] != UInt8(ascii: "}") {
                    let key = string()
                    skipWhitespace()
                    index += 1  // :
                    skipWhitespace()
                    members.append(Member(key, value()))
                    skipWhitespace()
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        skipWhitespace()
                    }
                }
                index += 1
                return .object(members)
            case UInt8(ascii: "["):
                index += 1
                var elements: [JSONValue] = []
                skipWhitespace()
                while bytes[index] != UInt8(ascii: "]") {
                    elements.append(value())
                    skipWhitespace()
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        skipWhitespace()
                    }
                }
                index += 1
                return .array(elements)
            case UInt8(ascii: "\""):
                return .string(string())
            case UInt8(ascii: "t"):
                index += 4
                return .bool(true)
            case UInt8(ascii: "f"):
                index += 5
                return .bool(false)
            case UInt8(ascii: "n"):
                index += 4
                return .null
            default:
                let start = index
                while index < bytes.count, Builder.isNumberByte(bytes[index]) { index += 1 }
                return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
            }
        }

        mutating func string() -> String {
            let start = index + 1
            var escaped = false
            index = start
            while bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\") {
                    escaped = true
                    index += 1
                }
                index += 1
            }
            let result = JSONScanner.decodeString(start..<index, in: bytes, escaped: escaped)
            index += 1
            return result
        }

        static func isNumberByte(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e")
        }
    }

    // MARK: Writing

    /// Compact JSON text, members in their order.
    public var jsonString: String {
        var bytes: [UInt8] = []
        write(into: &bytes, sortedKeys: false)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Compact JSON with object keys sorted and no whitespace: equal content gives equal bytes
    /// whatever the order of keys in the input.
    public var canonicalBytes: [UInt8] {
        var bytes: [UInt8] = []
        write(into: &bytes, sortedKeys: true)
        return bytes
    }

    public func write(into bytes: inout [UInt8], sortedKeys: Bool) {
        switch self {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let value): bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let text): bytes.append(contentsOf: text.utf8)
        case .string(let value): JSONValue.writeString(value, into: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                element.write(into: &bytes, sortedKeys: sortedKeys)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            var ordered = members
            if sortedKeys {
                // Later duplicates win, as in JavaScript; then keys in code-point order, which is the
                // order of their UTF-8 bytes. Sorted by (key, position), the last of equal keys wins.
                let positions = members.indices.sorted { first, second in
                    let (a, b) = (members[first].key.utf8, members[second].key.utf8)
                    return a.elementsEqual(b) ? first < second : a.lexicographicallyPrecedes(b)
                }
                ordered = []
                ordered.reserveCapacity(members.count)
                for (rank, position) in positions.enumerated()
                where rank + 1 == positions.count || members[positions[rank + 1]].key != members[position].key {
                    ordered.append(members[position])
                }
            }
            for (offset, member) in ordered.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                member.value.write(into: &bytes, sortedKeys: sortedKeys)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Appends `value` as a JSON string literal (quotes, `\"`, `\\`, and `\uXXXX` for controls).
    public static func writeString(_ value: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: value.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
