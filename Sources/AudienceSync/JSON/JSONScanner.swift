/// The kind of a JSON value.
public enum JSONKind: UInt8, Sendable, CustomStringConvertible {
    case object, array, string, number, bool, null

    public var description: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// Malformed JSON: what was wrong and the 0-based byte offset where it was found.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "\(message) at column \(offset + 1)" }
}

/// One member of a scanned object, as byte ranges into the scanned text.
public struct JSONMember: Sendable {
    /// The key's bytes between its quotes (still escaped when `keyIsEscaped`).
    public var key: Range<Int>
    public var keyIsEscaped: Bool
    /// The value's bytes, quotes and brackets included.
    public var value: Range<Int>
    public var kind: JSONKind
    /// For a string value: whether it contains escapes (then it must be decoded, not copied).
    public var valueIsEscaped: Bool
    /// The whole member, `"key": value`, for copying it unchanged.
    public var whole: Range<Int> { (key.lowerBound - 1)..<value.upperBound }
}

/// A validating scanner over UTF-8 JSON text (RFC 8259, UTF-8 checked inside strings).
///
/// It never builds a tree: `scanValue` validates and skips, `scanObject` returns the top-level
/// members as byte ranges. That keeps ingest at one pass over each line with no allocation
/// per nested value.
public struct JSONScanner {
    public let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var index = 0
    /// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
    public static let maximumDepth = 256

    public init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Validates that the text is exactly one JSON value (surrounded by optional whitespace).
    public mutating func validateDocument() throws -> JSONKind {
        skipWhitespace()
        let kind = try scanValue(depth: 0)
        try expectEnd()
        return kind
    }

    /// Validates a document that must be an object, and returns its members.
    /// When the document is valid JSON but not an object, throws `NotAnObject` with its kind.
    public mutating func scanObjectDocument(into members: inout [JSONMember]) throws {
        skipWhitespace()
        guard index < bytes.count else { throw fail("empty input") }
        guard bytes[index] == UInt8(ascii: "{") else {
            let kind = try scanValue(depth: 0)
            try expectEnd()
            throw NotAnObject(kind: kind)
        }
        try scanObject(depth: 0, members: &members)
        try expectEnd()
    }

    /// Thrown by `scanObjectDocument` for valid JSON that is not an object.
    public struct NotAnObject: Error, Sendable {
        public var kind: JSONKind
    }

    /// Validates the value at `range` as an object and returns its members (offsets stay absolute).
    public static func members(of range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) throws -> [JSONMember] {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound
        var members: [JSONMember] = []
        try scanner.scanObject(depth: 1, members: &members)
        return members
    }

    /// The ranges of the elements of the array at `range`, with their kinds.
    public static func elements(of range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) throws -> [(
        range: Range<Int>, kind: JSONKind
    )] {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound + 1
        var result: [(Range<Int>, JSONKind)] = []
        scanner.skipWhitespace()
        if scanner.index < range.upperBound, bytes[scanner.index] == UInt8(ascii: "]") { return [] }
        while true {
            scanner.skipWhitespace()
            let start = scanner.index
            let kind = try scanner.scanValue(depth: 1)
            result.append((start..<scanner.index, kind))
            scanner.skipWhitespace()
            guard scanner.index < bytes.count else { throw scanner.fail("unterminated array") }
            if bytes[scanner.index] == UInt8(ascii: ",") {
                scanner.index += 1
                continue
            }
            guard bytes[scanner.index] == UInt8(ascii: "]") else { throw scanner.fail("expected ',' or ']'") }
            return result
        }
    }

    // MARK: Scanning

    mutating func expectEnd() throws {
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the JSON value") }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    func fail(_ message: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, message: message) }

    /// Scans one value starting at `index` (no leading whitespace) and returns its kind.
    mutating func scanValue(depth: Int) throws -> JSONKind {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            var ignored: [JSONMember]? = nil
            try scanObject(depth: depth, collecting: &ignored)
            return .object
        case UInt8(ascii: "["):
            try scanArray(depth: depth)
            return .array
        case UInt8(ascii: "\""):
            _ = try scanString()
            return .string
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return .number
        default:
            throw fail("unexpected character \(describe(bytes[index]))")
        }
    }

    mutating func scanObject(depth: Int, members: inout [JSONMember]) throws {
        var collected: [JSONMember]? = members
        try scanObject(depth: depth, collecting: &collected)
        members = collected ?? []
    }

    private mutating func scanObject(depth: Int, collecting members: inout [JSONMember]?) throws {
        guard depth < JSONScanner.maximumDepth else { throw fail("nested too deeply") }
        index += 1  // {
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail(index < bytes.count ? "expected a quoted key" : "unterminated object")
            }
            let keyStart = index + 1
            let keyEscaped = try scanString()
            let keyEnd = index - 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            index += 1
            skipWhitespace()
            let valueStart = index
            let valueIsEscaped: Bool
            let kind: JSONKind
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                valueIsEscaped = try scanString()
                kind = .string
            } else {
                valueIsEscaped = false
                kind = try scanValue(depth: depth + 1)
            }
            members?.append(
                JSONMember(
                    key: keyStart..<keyEnd, keyIsEscaped: keyEscaped, value: valueStart..<index, kind: kind,
                    valueIsEscaped: valueIsEscaped))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            index += 1
            return
        }
    }

    private mutating func scanArray(depth: Int) throws {
        guard depth < JSONScanner.maximumDepth else { throw fail("nested too deeply") }
        index += 1  // [
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            _ = try scanValue(depth: depth + 1)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            index += 1
            return
        }
    }

    /// Scans a string at `index` (its opening quote); returns whether it holds escapes.
    private mutating func scanString() throws -> Bool {
        index += 1
        var escaped = false
        while index < bytes.count {
            skipPlainASCII()
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return escaped
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < bytes.count else { throw fail("truncated \\u escape") }
                    for offset in 1...4 where !isHexDigit(bytes[index + offset]) {
                        index += offset
                        throw fail("bad \\u escape")
                    }
                    index += 5
                default:
                    throw fail("bad escape \\\(describe(bytes[index]))")
                }
            } else if byte < 0x20 {
                throw fail("control character in a string")
            } else if byte < 0x80 {
                index += 1
            } else {
                try scanUTF8Sequence()
            }
        }
        throw fail("unterminated string")
    }

    /// Advances over string bytes that need no attention — ASCII from 0x20 up, except `"` and `\\` —
    /// eight at a time, stopping at the first byte that does (or where fewer than eight are left).
    /// Internal, not private, so that tests can hold it against a byte-by-byte reference.
    @inline(__always)
    mutating func skipPlainASCII() {
        guard let base = bytes.baseAddress else { return }
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            // The high bit of a byte's lane is set for a byte < 0x20, a quote, a backslash, or a
            // byte ≥ 0x80 (the usual "has a zero byte" test on word, word ^ quotes, word ^ backslashes).
            // Lanes above the first flagged one may be flagged wrongly; the first one is exact.
            let control = (word &- ones &* 0x20) & ~word
            let quote = ((word ^ (ones &* 0x22)) &- ones) & ~(word ^ (ones &* 0x22))
            let backslash = ((word ^ (ones &* 0x5C)) &- ones) & ~(word ^ (ones &* 0x5C))
            let flagged = (control | quote | backslash | word) & highs
            if flagged != 0 {
                index += flagged.trailingZeroBitCount >> 3
                return
            }
            index += 8
        }
    }

    /// Checks one multi-byte UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func scanUTF8Sequence() throws {
        let lead = bytes[index]
        let length: Int
        var lowest: UInt8 = 0x80
        var highest: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowest = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            highest = 0x9F
        case 0xF0:
            length = 4
            lowest = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            highest = 0x8F
        default: throw fail("invalid UTF-8")
        }
        guard index + length <= bytes.count else { throw fail("invalid UTF-8") }
        let second = bytes[index + 1]
        guard second >= lowest && second <= highest else { throw fail("invalid UTF-8") }
        for offset in 2..<max(length, 2) where bytes[index + offset] & 0xC0 != 0x80 {
            throw fail("invalid UTF-8")
        }
        index += length
    }

    private mutating func scanNumber() throws {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("bad number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("bad number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("bad number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, isDigit(bytes[index]) || bytes[index] == UInt8(ascii: ".") {
            index = start
            throw fail("bad number")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of input") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw fail("unexpected character \(describe(bytes[index]))")
        }
        index += count
    }

    @inline(__always) private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    @inline(__always) private func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    private func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}

extension JSONScanner {
    /// Decodes the string whose contents (between the quotes) are `range`.
    public static func decodeString(_ range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
        let slice = UnsafeBufferPointer(rebasing: bytes[range])
        guard escaped else { return String(decoding: slice, as: UTF8.self) }
        var output: [UInt8] = []
        output.reserveCapacity(slice.count)
        var index = 0
        func hex(_ at: Int) -> UInt32 {
            var value: UInt32 = 0
            for offset in 0..<4 {
                let byte = slice[at + offset]
                let digit: UInt8 = byte <= 0x39 ? byte - 0x30 : (byte | 0x20) - 0x61 + 10
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        func appendScalar(_ value: UInt32) {
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            output.append(contentsOf: String(scalar).utf8)
        }
        while index < slice.count {
            let byte = slice[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            let next = slice[index + 1]
            index += 2
            switch next {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var value = hex(index)
                index += 4
                if value >= 0xD800 && value < 0xDC00, index + 6 <= slice.count, slice[index] == UInt8(ascii: "\\"),
                    slice[index + 1] == UInt8(ascii: "u")
                {
                    let low = hex(index + 2)
                    if low >= 0xDC00 && low < 0xE000 {
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                appendScalar(value)
            default: output.append(next)  // " \ /
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Whether the raw key bytes at `member.key` equal `name` (escaped keys are decoded first).
    @inline(__always)
    public static func key(_ member: JSONMember, in bytes: UnsafeBufferPointer<UInt8>, equals name: StaticString)
        -> Bool
    {
        if member.keyIsEscaped { return decodeString(member.key, in: bytes, escaped: true) == name.description }
        let count = name.utf8CodeUnitCount
        guard member.key.count == count else { return false }
        return memcmp(bytes.baseAddress! + member.key.lowerBound, name.utf8Start, count) == 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
