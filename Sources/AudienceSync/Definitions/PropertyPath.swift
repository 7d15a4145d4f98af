/// A path to a value inside a JSON object: `properties.total`, `context.page.path`,
/// `properties."Plan Name".tier` (SPEC §4.2).
///
/// Keys are separated by dots; a key containing dots, spaces or other separators is written in
/// double quotes. A key may not contain `"` or `\`: SQLite versions disagree on escapes inside
/// JSON path labels, so such a key could not be addressed reliably and is refused when parsing.
/// Each store's dialect spells a path for its engine (`SQLDialect.jsonPath`).
public struct PropertyPath: Hashable, Sendable, CustomStringConvertible {
    /// The keys from the root, at least one, none empty.
    public var keys: [String]

    /// A path of already separated keys. Use `parse(_:)` for user text.
    public init(_ keys: [String]) { self.keys = keys }

    /// Why a path does not parse, as a sentence fragment for an error message.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `a.b."c d"`; throws a `ParseError` saying what is wrong.
    public static func parse(_ text: String) throws(ParseError) -> PropertyPath {
        let scalars = Array(text.unicodeScalars)
        var keys: [String] = []
        var index = 0
        func fail(_ message: String) -> ParseError {
            ParseError(
                description:
                    "\(message) in path '\(text)' (expected keys separated by dots, like properties.total or properties.\"Plan Name\")"
            )
        }
        if scalars.isEmpty {
            throw ParseError(description: "empty path (expected keys separated by dots, like properties.total)")
        }
        while true {
            var key = ""
            if index < scalars.count, scalars[index] == "\"" {
                index += 1
                while index < scalars.count, scalars[index] != "\"" {
                    if scalars[index] == "\\" { throw fail("a key may not contain '\\'") }
                    key.unicodeScalars.append(scalars[index])
                    index += 1
                }
                guard index < scalars.count else { throw fail("unterminated quoted key") }
                index += 1
                guard index == scalars.count || scalars[index] == "." else {
                    throw fail("a quoted key must be followed by '.' or the end (a key may not contain '\"')")
                }
            } else {
                while index < scalars.count, scalars[index] != "." {
                    let scalar = scalars[index]
                    if scalar == "\"" { throw fail("a key may not contain '\"'") }
                    if scalar == "\\" { throw fail("a key may not contain '\\'") }
                    if scalar.properties.isWhitespace { throw fail("a key containing spaces must be quoted") }
                    key.unicodeScalars.append(scalar)
                    index += 1
                }
            }
            if key.isEmpty { throw fail("empty key") }
            keys.append(key)
            if index == scalars.count { break }
            index += 1  // the dot
            if index == scalars.count { throw fail("empty key") }
        }
        return PropertyPath(keys)
    }

    /// The first key (`properties` in `properties.total`).
    public var root: String { keys.first ?? "" }

    /// The path without its first key (`total` for `properties.total`); nil for a one-key path.
    public var droppingRoot: PropertyPath? { keys.count > 1 ? PropertyPath(Array(keys.dropFirst())) : nil }

    /// The path as written by a user, quoting only keys that need it: `properties."Plan Name"`.
    public var description: String {
        keys.map { key in
            let plain = key.unicodeScalars.allSatisfy {
                $0 != "." && $0 != "\"" && $0 != "\\" && !$0.properties.isWhitespace
            }
            return plain ? key : "\"\(key)\""
        }.joined(separator: ".")
    }
}
