import Foundation

/// The messages of a Segment batch body (`{"batch": [message, ...], ...}`), each as the exact
/// bytes it was sent as, so that a re-sent message can be compared byte for byte.
///
/// The scan only follows JSON's structure (strings, nesting); it does not validate numbers or
/// literals. Each message is then decoded with Foundation's parser, which is independent of the
/// engine's own JSON code.
enum BatchBody {
    /// The byte ranges of the elements of the top-level `batch` array; nil when `body` is not a
    /// JSON object with such an array.
    static func messageRanges(_ body: [UInt8]) -> [Range<Int>]? {
        var scanner = Scanner(bytes: body)
        scanner.skipWhitespace()
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        var ranges: [Range<Int>]?
        scanner.skipWhitespace()
        if scanner.take(UInt8(ascii: "}")) { return nil }
        while true {
            scanner.skipWhitespace()
            guard let key = scanner.string() else { return nil }
            scanner.skipWhitespace()
            guard scanner.take(UInt8(ascii: ":")) else { return nil }
            scanner.skipWhitespace()
            if body[key].elementsEqual("batch".utf8) && scanner.peek == UInt8(ascii: "[") {
                guard let elements = scanner.arrayElements() else { return nil }
                ranges = elements
            } else {
                guard scanner.skipValue() else { return nil }
            }
            scanner.skipWhitespace()
            if scanner.take(UInt8(ascii: ",")) { continue }
            guard scanner.take(UInt8(ascii: "}")) else { return nil }
            return ranges
        }
    }

    /// The messages of `body`, decoded; nil when it is not a batch.
    static func messages(_ body: [UInt8]) -> [LoopbackReceiver.Message]? {
        messageRanges(body)?.map { LoopbackReceiver.Message(bytes: body[$0]) }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            index += 1
            return true
        }

        mutating func skipWhitespace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        /// A string at the cursor: the range of its content (between the quotes, escapes undone nowhere).
        mutating func string() -> Range<Int>? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while let byte = peek {
                index += 1
                if byte == UInt8(ascii: "\\") {
                    index += 1
                } else if byte == UInt8(ascii: "\"") {
                    return start..<(index - 1)
                }
            }
            return nil
        }

        /// Skips one value: a string, an object or array (with everything inside), or a scalar.
        mutating func skipValue() -> Bool {
            switch peek {
            case UInt8(ascii: "\""):
                return string() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let byte = peek {
                    switch byte {
                    case UInt8(ascii: "\""):
                        guard string() != nil else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                    default:
                        break
                    }
                    index += 1
                    if depth == 0 { return true }
                }
                return false
            case nil:
                return false
            default:
                let start = index
                while let byte = peek, !Self.endsScalar(byte) { index += 1 }
                return index > start
            }
        }

        /// The ranges of an array's elements; the cursor ends after the closing bracket.
        mutating func arrayElements() -> [Range<Int>]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var ranges: [Range<Int>] = []
            skipWhitespace()
            if take(UInt8(ascii: "]")) { return ranges }
            while true {
                skipWhitespace()
                let start = index
                guard skipValue() else { return nil }
                ranges.append(start..<index)
                skipWhitespace()
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "]")) ? ranges : nil
            }
        }

        static func endsScalar(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || byte == 0x20
                || byte == 0x09 || byte == 0x0A || byte == 0x0D
        }
    }
}
