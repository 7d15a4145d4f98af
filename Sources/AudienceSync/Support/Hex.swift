import Foundation

/// Lowercase hexadecimal, as the ids derived from SHA-256 digests spell them.
enum Hex {
    /// `prefix`, then the first `digits` hexadecimal digits of `bytes` (all of them when nil), built
    /// in place: the string is the only allocation.
    static func string(prefix: String = "", _ bytes: some ContiguousBytes, digits: Int? = nil) -> String {
        bytes.withUnsafeBytes { bytes in
            let digits = min(digits ?? 2 * bytes.count, 2 * bytes.count)
            return String(unsafeUninitializedCapacity: prefix.utf8.count + digits) { text in
                var index = 0
                for byte in prefix.utf8 {
                    text[index] = byte
                    index += 1
                }
                for digit in 0..<digits {
                    let byte = bytes[digit >> 1]
                    text[index] = Hex.digit(digit & 1 == 0 ? byte >> 4 : byte & 0xF)
                    index += 1
                }
                return index
            }
        }
    }

    /// The bytes `text` spells (upper or lower case, two digits a byte); nil when it is not hex.
    static func bytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    /// The lowercase hexadecimal digit of `value` (0…15), as an ASCII byte.
    @inline(__always) private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
