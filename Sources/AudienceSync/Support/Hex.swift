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

    /// The lowercase hexadecimal digit of `value` (0…15), as an ASCII byte.
    @inline(__always) private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
