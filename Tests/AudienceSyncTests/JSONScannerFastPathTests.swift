import Testing

@testable import AudienceSync

/// The scanner skips plain ASCII inside strings eight bytes at a time (`skipPlainASCII`): each
/// special byte at every lane of a word, held against byte-by-byte references.
@Suite struct JSONScannerFastPathTests {
    /// Whether the string scan must stop at `byte`: a quote, a backslash, a control byte or a byte of
    /// a multi-byte UTF-8 sequence (or an invalid one).
    private static func needsAttention(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x22 || byte == 0x5C || byte >= 0x80
    }

    /// Where `skipPlainASCII` must stop, found one byte at a time: at the first byte that needs
    /// attention if a whole word up to and including it fits in the text, else at the start of the
    /// first word that does not fit.
    private static func referenceStop(_ bytes: [UInt8]) -> Int {
        let wholeWords = bytes.count / 8
        for (index, byte) in bytes.enumerated() where Self.needsAttention(byte) {
            return index < wholeWords * 8 ? index : wholeWords * 8
        }
        return wholeWords * 8
    }

    /// Runs `skipPlainASCII` on `bytes`, placed `misalignment` bytes past an 8-byte boundary in memory.
    private static func stop(_ bytes: [UInt8], misalignment: Int) -> Int {
        let padded = [UInt8](repeating: 0, count: misalignment) + bytes
        return padded.withUnsafeBufferPointer { whole in
            var scanner = JSONScanner(UnsafeBufferPointer(rebasing: whole[misalignment...]))
            scanner.skipPlainASCII()
            return scanner.index
        }
    }

    /// Every byte value at every position of three words (lanes 0…7 of the first, second and third
    /// word), in texts of every length around them, on plain ASCII neighbours.
    @Test(arguments: 0..<8)
    func everyByteAtEveryLane(misalignment: Int) {
        for byte in UInt8.min...UInt8.max {
            for position in 0..<24 {
                for length in (position + 1)...(position + 9) {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = byte
                    let expected = Self.referenceStop(bytes)
                    let got = Self.stop(bytes, misalignment: misalignment)
                    #expect(
                        got == expected,
                        "byte 0x\(String(byte, radix: 16)) at \(position) of \(length) (misaligned by \(misalignment))")
                }
            }
        }
    }

    /// Two special bytes in one word (a borrow from the lower lane may flag the upper one wrongly,
    /// never the lower one), and plain bytes that sit next to the special values.
    @Test func pairsInOneWordAndNearMisses() {
        let specials: [UInt8] = [0x00, 0x01, 0x1F, 0x22, 0x5C, 0x80, 0xC3, 0xFF]
        let plain: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x41]
        for first in specials + plain {
            for second in specials + plain {
                for a in 0..<16 {
                    for b in (a + 1)..<17 {
                        var bytes = [UInt8](repeating: UInt8(ascii: "z"), count: 24)
                        bytes[a] = first
                        bytes[b] = second
                        #expect(Self.stop(bytes, misalignment: 0) == Self.referenceStop(bytes))
                    }
                }
            }
        }
    }

    /// Random texts, mostly plain with a few special bytes, against the reference.
    @Test func randomTexts() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let length = random.below(40)
            let bytes = (0..<length).map { _ -> UInt8 in
                random.percent(90) ? UInt8(0x20 + random.below(0x60)) : UInt8(truncatingIfNeeded: random.next())
            }
            #expect(Self.stop(bytes, misalignment: random.below(8)) == Self.referenceStop(bytes), "\(bytes)")
        }
    }

    // MARK: The whole string scan

    /// The result of scanning a string: where it ends and whether it holds escapes, or nil when invalid.
    private struct Outcome: Equatable {
        var end: Int
        var escaped: Bool
    }

    /// Scans the object `{"k":"<content>"}` with the scanner; the string value's end and escapes.
    private static func scan(content: [UInt8]) -> Outcome? {
        let bytes = Array("{\"k\":\"".utf8) + content + Array("\"}".utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer)
            var members: [JSONMember] = []
            guard (try? scanner.scanObjectDocument(into: &members)) != nil else { return nil }
            return Outcome(end: members[0].value.upperBound, escaped: members[0].valueIsEscaped)
        }
    }

    /// The same, byte by byte: content without quotes or backslashes is valid when it has no control
    /// byte and is valid UTF-8 (Swift's own validation).
    private static func referenceScan(content: [UInt8]) -> Outcome? {
        precondition(!content.contains(0x22) && !content.contains(0x5C))
        guard !content.contains(where: { $0 < 0x20 }), String(validating: content, as: UTF8.self) != nil else {
            return nil
        }
        return Outcome(end: 6 + content.count + 1, escaped: false)
    }

    /// Every byte value (other than quote and backslash) at every lane of three words, and multi-byte
    /// UTF-8 sequences, valid and truncated, starting at every lane and so across word boundaries.
    @Test func stringsMatchAByteByByteReference() {
        let plain = [UInt8](repeating: UInt8(ascii: "a"), count: 30)
        for position in 0..<24 {
            for byte in UInt8.min...UInt8.max where byte != 0x22 && byte != 0x5C {
                var content = plain
                content[position] = byte
                #expect(Self.scan(content: content) == Self.referenceScan(content: content), "0x\(String(byte, radix: 16)) at \(position)")
            }
            let sequences: [[UInt8]] = [
                [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
                [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80],
            ]
            for sequence in sequences {
                var content = plain
                content.replaceSubrange(position..<(position + sequence.count), with: sequence)
                #expect(Self.scan(content: content) == Self.referenceScan(content: content), "\(sequence) at \(position)")
            }
        }
    }

    /// A quote or an escape at every lane: the string ends at the first unescaped quote.
    @Test func quotesAndEscapesAtEveryLane() {
        for position in 0..<24 {
            var content = [UInt8](repeating: UInt8(ascii: "a"), count: position)
            #expect(Self.scan(content: content) == Outcome(end: 6 + position + 1, escaped: false))
            for escape in [Array("\\\"".utf8), Array("\\\\".utf8), Array("\\n".utf8), Array("\\u00e9".utf8)] {
                content = [UInt8](repeating: UInt8(ascii: "a"), count: position) + escape + Array("bcdefghijk".utf8)
                #expect(Self.scan(content: content) == Outcome(end: 6 + content.count + 1, escaped: true))
            }
            content = [UInt8](repeating: UInt8(ascii: "a"), count: position) + Array("\\x".utf8) + Array("bcdefghijk".utf8)
            #expect(Self.scan(content: content) == nil)
        }
    }
}
