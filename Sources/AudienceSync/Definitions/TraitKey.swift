/// Trait keys: the snake_case of a definition's name, by Segment's rules (SPEC §4.5).
public enum TraitKey {
    /// The snake_case of `name`: `Order Completed Last 30days` → `order_completed_last_30days`.
    ///
    /// Only ASCII letters and digits take part; every other character separates words and is
    /// dropped. A word is a maximal run of uppercase letters and digits followed by a maximal run
    /// of lowercase letters and digits (`XMLHttp` → `xmlhttp`, `abc1Def` → `abc1_def`). Words are
    /// lowercased and joined by `_`. The result is empty when `name` has no ASCII letter or digit.
    public static func snakeCase(_ name: String) -> String {
        let bytes = Array(name.utf8)
        var words: [[UInt8]] = []
        var index = 0
        func isUpper(_ byte: UInt8) -> Bool { byte >= 0x41 && byte <= 0x5A }
        func isLower(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        while index < bytes.count {
            // Non-ASCII scalars are multi-byte in UTF-8, and all their bytes are >= 0x80: separators.
            guard isUpper(bytes[index]) || isLower(bytes[index]) || isDigit(bytes[index]) else {
                index += 1
                continue
            }
            var word: [UInt8] = []
            while index < bytes.count, isUpper(bytes[index]) || isDigit(bytes[index]) {
                word.append(isUpper(bytes[index]) ? bytes[index] + 0x20 : bytes[index])
                index += 1
            }
            while index < bytes.count, isLower(bytes[index]) || isDigit(bytes[index]) {
                word.append(bytes[index])
                index += 1
            }
            words.append(word)
        }
        return words.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "_")
    }

    /// Whether `key` is a valid trait key: one or more of `a-z`, `0-9` and `_`.
    public static func isValid(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }
}
